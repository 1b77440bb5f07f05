"""Runs of the plugin itself in a pytester subprocess."""
