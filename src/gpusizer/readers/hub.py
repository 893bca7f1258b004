"""Optional Hugging Face Hub look-up (``--hf``): a repo's config.json and safetensors index.

Never needed offline; needs the ``hf`` extra (httpx). The transport is a parameter so
tests drive it with ``httpx.MockTransport`` instead of the network.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gpusizer.catalog.hf_config import check_config_bounds
from gpusizer.errors import BadInputError
from gpusizer.readers.bounded import parse_json
from gpusizer.readers.local import LocalModel

__all__ = ["HUB_URL", "fetch_hub_model"]

HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


MAX_HUB_JSON_BYTES = 4 * 1024 * 1024  # a config.json or an index is a few KiB; cap what we take


def _get_json(client: Any, url: str, where: str) -> tuple[int, Any]:
    """(status, parsed JSON or None) reading at most MAX_HUB_JSON_BYTES of the body."""
    with client.stream("GET", url) as resp:
        if resp.status_code != 200:
            return resp.status_code, None
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > MAX_HUB_JSON_BYTES:
                raise BadInputError("hf", f"{where} is larger than {MAX_HUB_JSON_BYTES // 2**20} MiB")
    return 200, parse_json(bytes(body), where)


def fetch_hub_model(repo: str, *, transport: Any = None, timeout_s: float = 20.0) -> LocalModel:
    """Read ``repo``'s config.json (and index total_size when present) from the Hub."""
    if not _REPO.match(repo):
        raise BadInputError("MODEL", f"{repo!r} is not a Hugging Face repo id (owner/name)")
    try:
        import httpx
    except ImportError as exc:
        raise BadInputError("hf", "needs the optional extra: pip install 'gpusizer[hf]'") from exc
    headers = {}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(
        base_url=HUB_URL, transport=transport, timeout=timeout_s, headers=headers, follow_redirects=True
    ) as client:
        try:
            status, config = _get_json(client, f"/{repo}/resolve/main/config.json", f"{repo}: config.json")
        except httpx.HTTPError as exc:
            raise BadInputError("hf", f"cannot reach the Hub ({exc.__class__.__name__})") from exc
        if status != 200:
            raise BadInputError("hf", f"{repo}: config.json answered HTTP {status}")
        exact = None
        note = None
        try:
            _, index = _get_json(
                client, f"/{repo}/resolve/main/model.safetensors.index.json", f"{repo}: index"
            )
            meta = index.get("metadata") if isinstance(index, dict) else None
            total = meta.get("total_size") if isinstance(meta, dict) else None
            if isinstance(total, int) and not isinstance(total, bool) and total > 0:
                exact, note = total, "total_size from the Hub's model.safetensors.index.json"
        except (httpx.HTTPError, BadInputError):
            pass  # the index only refines the weight bytes; the config is what matters
    if not isinstance(config, dict):
        raise BadInputError("hf", f"{repo}: config.json is not a JSON object")
    try:
        check_config_bounds(config)
    except BadInputError as exc:
        raise BadInputError("hf", f"{repo}: {exc.message}") from exc
    return LocalModel(
        name=repo,
        config=config,
        source=f"{HUB_URL}/{repo}/blob/main/config.json",
        exact_weight_bytes=exact,
        exact_includes_mtp=exact is not None,
        weight_bytes_note=note,
    )
