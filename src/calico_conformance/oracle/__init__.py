"""The policy oracle: which traffic Calico allows, computed from policy objects alone (pure Python)."""
