"""Name resolution: the names users type → catalogue entries, with "did you mean".

Pure functions over catalogue tuples. Matching is case-insensitive and ignores vendor
words ("NVIDIA", "GeForce", "Tesla", "AMD", "Instinct"), spaces, underscores and dashes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from gpusizer.catalog.specs import GpuSpec, ModelEntry, QuantFormat
from gpusizer.errors import NotInCatalogueError

__all__ = ["GpuMatch", "normalize", "resolve_gpu", "resolve_model", "resolve_quant"]

_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce|tesla|amd|instinct|quadro)\b")


@lru_cache(maxsize=8192)
def normalize(name: str) -> str:
    """Canonical lookup form: lowercase, vendor words dropped, separators removed."""
    s = name.strip().lower()
    s = _VENDOR_WORDS.sub(" ", s)
    s = re.sub(r"\bgpu\b|[()]", " ", s)  # "Apple M2 Ultra (76-core GPU)"
    s = re.sub(r"(\d+)[\s\-]*cores?\b", r"\1c", s)  # "76-core" → "76c"
    return re.sub(r"[\s_\-]+", "", s)


def _suggest(query: str, names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    by_norm = {normalize(n): n for n in names}
    close = difflib.get_close_matches(normalize(query), list(by_norm), n=4, cutoff=0.6)
    out = [by_norm[c] for c in close]
    if not out:  # fall back to substring hits ("r1-distill" → the distills)
        q = normalize(query)
        out = [n for n in names if q and q in normalize(n)][:4]
    return out


def resolve_model(name: str, entries: Sequence[ModelEntry]) -> ModelEntry:
    """HF repo id, its short form (after the slash) or an alias → entry."""
    q = normalize(name)
    for e in entries:
        forms = [e.id, e.id.split("/")[-1], *e.aliases]
        if any(normalize(f) == q for f in forms):
            return e
    raise NotInCatalogueError("model", name, _suggest(name, (e.id.split("/")[-1].lower() for e in entries)))


@dataclass(frozen=True)
class GpuMatch:
    gpu: GpuSpec
    note: str | None  # set when the name was ambiguous and a common variant was picked


def resolve_gpu(name: str, gpus: Sequence[GpuSpec]) -> GpuMatch:
    """Key, display name, nvidia-smi name or alias → GPU. Ambiguous short names pick
    the common variant and say which others exist."""
    q = normalize(name)
    for g in gpus:
        if normalize(g.key) == q or normalize(g.name) == q:
            return GpuMatch(g, None)
    for g in gpus:
        if any(normalize(a) == q for a in g.aliases):
            others = [o.key for o in gpus if o is not g and normalize(o.key).startswith(q)]
            note = None
            if others:
                note = (
                    f"{name!r} taken as {g.name} ({g.key}); other variants: "
                    f"{', '.join(others)} — pass one of those to choose"
                )
            return GpuMatch(g, note)
    raise NotInCatalogueError("gpu", name, _suggest(name, [g.key for g in gpus] + [g.name for g in gpus]))


def resolve_quant(name: str, formats: Sequence[QuantFormat]) -> QuantFormat:
    q = normalize(name)
    for f in formats:
        if normalize(f.key) == q or any(normalize(a) == q for a in f.aliases):
            return f
    raise NotInCatalogueError("quant", name, _suggest(name, [f.key for f in formats]))
