"""The team-lead review pages under /review/: offer log, KPIs, budget, fairness (and model versions)."""
