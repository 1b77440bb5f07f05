"""Change impact: what a policy change opens and closes in each registered cluster, judged against the layout."""
