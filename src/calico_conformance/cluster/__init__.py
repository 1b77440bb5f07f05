"""Live clusters: kind lifecycle, the Kubernetes client wrapper, the Calico install. Only here talks to Kubernetes."""
