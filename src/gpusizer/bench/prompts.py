"""Where the bench's prompts come from: synthetic text sized with the server's own
tokenizer when it has a ``/tokenize`` endpoint, or a JSONL dataset file.

``/tokenize`` as engines expose it: vLLM takes ``{"model", "prompt"}`` and answers
``{"count", "tokens"}``; llama.cpp's server takes ``{"content"}`` and answers ``{"tokens"}``.
Without one, the length is an estimate (about a token per word of the synthetic text) and
the run says so; the server's ``usage.prompt_tokens`` is stored either way.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gpusizer.bench.client import Prompt, synthetic_prompt
from gpusizer.errors import BadInputError

__all__ = ["PromptSizing", "load_dataset", "size_synthetic_prompt"]

MAX_DATASET_BYTES = 1 << 30
MAX_DATASET_ROWS = 1_000_000


@dataclass(frozen=True)
class PromptSizing:
    words: int  # words of synthetic text to send
    tokens: int | None  # what the server's tokenizer counted for them; None when estimated
    source: str  # "tokenizer endpoint" | "estimated (...)"


def _count(client: httpx.Client, model: str, text: str) -> int | None:
    for body in ({"model": model, "prompt": text}, {"content": text}):
        try:
            resp = client.post("/tokenize", json=body)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            continue
        try:
            data = resp.json()
        except ValueError:
            return None
        if isinstance(data, dict):
            if isinstance(data.get("count"), int):
                return int(data["count"])
            if isinstance(data.get("tokens"), list):
                return len(data["tokens"])
    return None


def size_synthetic_prompt(
    url: str,
    model: str,
    target_tokens: int,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> PromptSizing:
    """How many words of synthetic text make ``target_tokens`` tokens on this server."""
    with httpx.Client(
        base_url=url.rstrip("/"), headers=headers or {}, timeout=timeout_s, transport=transport
    ) as client:
        words = target_tokens
        seen: dict[int, int] = {}
        for _ in range(8):
            got = _count(client, model, synthetic_prompt(words, 0))
            if got is None:
                return PromptSizing(target_tokens, None, "estimated (the server has no /tokenize)")
            seen[words] = got
            if got == target_tokens:
                return PromptSizing(words, got, "tokenizer endpoint")
            step = round(words * (target_tokens / got - 1)) if got else target_tokens
            nxt = max(1, words + (step or (1 if got < target_tokens else -1)))
            if nxt in seen:
                break
            words = nxt
        best = min(seen, key=lambda w: (abs(seen[w] - target_tokens), w))
        return PromptSizing(best, seen[best], "tokenizer endpoint")


def _row(obj: Any, where: str) -> Prompt:
    if not isinstance(obj, dict):
        raise BadInputError("--dataset", f"{where}: each line must be a JSON object")
    out = obj.get("output_len", obj.get("max_tokens"))
    if out is not None and (not isinstance(out, int) or not 1 <= out <= 1_000_000):
        raise BadInputError("--dataset", f"{where}: output_len must be a whole number 1..1000000")
    if isinstance(obj.get("prompt"), str):
        return Prompt(text=obj["prompt"], output_len=out)
    msgs = obj.get("messages")
    if msgs is None and isinstance(obj.get("conversations"), list):  # ShareGPT: the first human turn
        first = next(
            (c for c in obj["conversations"] if isinstance(c, dict) and c.get("from") == "human"), None
        )
        if first is not None and isinstance(first.get("value"), str):
            return Prompt(text=first["value"], output_len=out)
    if (
        isinstance(msgs, list)
        and msgs
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in msgs
        )
    ):
        return Prompt(
            messages=tuple({"role": m["role"], "content": m["content"]} for m in msgs), output_len=out
        )
    raise BadInputError(
        "--dataset",
        f"{where}: no prompt found",
        'one of {"prompt": "..."}, {"messages": [{"role": "user", "content": "..."}]}, '
        'ShareGPT {"conversations": [...]}; optional "output_len"',
    )


def load_dataset(path: str | Path) -> list[Prompt]:
    """Read a JSONL file of prompts; every bad line is one clear error naming its number."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):  # a folder, or a pipe or device that would block the read
            raise BadInputError("--dataset", f"{p} is not a regular file")
        if st.st_size > MAX_DATASET_BYTES:
            raise BadInputError("--dataset", f"{p} is larger than 1 GiB")
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise BadInputError("--dataset", f"{p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError("--dataset", f"cannot read {p} as UTF-8 text ({exc.__class__.__name__})") from exc
    prompts: list[Prompt] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError("--dataset", f"{p.name} line {n} is not JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise BadInputError("--dataset", f"{p.name} line {n} is nested too deeply") from exc
        prompts.append(_row(obj, f"{p.name} line {n}"))
        if len(prompts) > MAX_DATASET_ROWS:
            raise BadInputError("--dataset", f"more than {MAX_DATASET_ROWS:,} prompts")
    if not prompts:
        raise BadInputError("--dataset", f"{p} has no prompts")
    return prompts
