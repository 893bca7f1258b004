"""gpusizer.bench: load-test an OpenAI-compatible server (shell: network, clock)."""
