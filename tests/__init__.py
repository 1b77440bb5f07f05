"""The project's own tests. A package, so that each test module has a unique dotted name
(`tests.netns.test_mtu` beside the suites' `test_mtu`) and `pytest tests suites` collects both."""
