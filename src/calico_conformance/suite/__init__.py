"""What the suites assert: the cases (as data), the tier scenarios, the assertions and their failure
messages, whose fault a wrong flow is, the MTU judgement and the reproduce scenarios."""
