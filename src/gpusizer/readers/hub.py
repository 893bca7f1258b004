"""Optional Hugging Face Hub look-up (``--hf``): a repo's config.json and safetensors index.

Never needed offline; needs the ``hf`` extra (httpx). The transport is a parameter so
tests drive it with ``httpx.MockTransport`` instead of the network.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gpusizer.errors import BadInputError
from gpusizer.readers.local import LocalModel

__all__ = ["HUB_URL", "fetch_hub_model"]

HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def fetch_hub_model(repo: str, *, transport: Any = None, timeout_s: float = 20.0) -> LocalModel:
    """Read ``repo``'s config.json (and index total_size when present) from the Hub."""
    if not _REPO.match(repo):
        raise BadInputError("MODEL", f"{repo!r} is not a Hugging Face repo id (owner/name)")
    try:
        import httpx
    except ImportError as exc:
        raise BadInputError("--hf", "needs the optional extra: pip install 'gpusizer[hf]'") from exc
    headers = {}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(
        base_url=HUB_URL, transport=transport, timeout=timeout_s, headers=headers, follow_redirects=True
    ) as client:
        try:
            resp = client.get(f"/{repo}/resolve/main/config.json")
        except httpx.HTTPError as exc:
            raise BadInputError("--hf", f"cannot reach the Hub ({exc.__class__.__name__})") from exc
        if resp.status_code != 200:
            raise BadInputError("--hf", f"{repo}: config.json answered HTTP {resp.status_code}")
        try:
            config = resp.json()
        except ValueError as exc:
            raise BadInputError("--hf", f"{repo}: config.json is not JSON") from exc
        exact = None
        note = None
        try:
            idx = client.get(f"/{repo}/resolve/main/model.safetensors.index.json")
            if idx.status_code == 200:
                total = (idx.json().get("metadata") or {}).get("total_size")
                if isinstance(total, int) and total > 0:
                    exact, note = total, "total_size from the Hub's model.safetensors.index.json"
        except (httpx.HTTPError, ValueError):
            pass
    if not isinstance(config, dict):
        raise BadInputError("--hf", f"{repo}: config.json is not a JSON object")
    return LocalModel(
        name=repo,
        config=config,
        source=f"{HUB_URL}/{repo}/blob/main/config.json",
        exact_weight_bytes=exact,
        exact_includes_mtp=exact is not None,
        weight_bytes_note=note,
    )
