"""Pure unit tests (no root, no cluster)."""
