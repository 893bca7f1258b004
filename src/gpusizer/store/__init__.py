"""gpusizer.store: SQLite storage of benchmark runs and requests (shell)."""
