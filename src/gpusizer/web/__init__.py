"""gpusizer.web: the JSON API and the planner page (FastAPI, shell)."""
