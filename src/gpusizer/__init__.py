"""gpusizer: right-size GPU hardware for self-hosted LLM inference.

The public Python API mirrors the CLI: resolve a model and a GPU from the catalogue,
then ask the estimators. See ``gpusizer.api``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
