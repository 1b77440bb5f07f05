"""Registers the suites' fixtures; options, markers and the run's configuration come from the plugin."""

pytest_plugins = (
    "fixtures.run",
    "fixtures.targets",
    "fixtures.reachability",
    "fixtures.clusters",
    "fixtures.probes",
    "fixtures.coverage",
)
