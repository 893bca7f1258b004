"""gpusizer.simulate: a deterministic discrete-event simulation of continuous batching (pure)."""
