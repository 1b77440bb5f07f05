"""The tenancy model: the layout (namespaces, workloads, requirements), the cluster register, the pods a
layout implies, and the probe surface a policy set adds to it. Pure: no Kubernetes, no pytest."""
