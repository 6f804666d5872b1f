"""Release gates: latency/size/quality budgets and a regression check against a baseline run."""
