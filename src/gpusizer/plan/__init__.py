"""gpusizer.plan: candidate search, SLO filter, cost, ranking and the guide's decision rules (pure)."""
