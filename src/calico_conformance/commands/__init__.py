"""Subcommands of the `calico-conformance` command line, one module each (see cli.py's registry)."""
