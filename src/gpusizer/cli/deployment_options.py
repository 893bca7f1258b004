"""The options every deployment command (``fit``, ``perf``, ``simulate``) opens with, declared
once: MODEL, --gpu, --gpus, --tp, --pp, --quant, --kv-dtype and --engine.

``@deployment_command`` puts them in front of a command's own options (so ``--help`` lists
them first, as it always has) and hands the command their values as one ``Deployment``;
the command's own signature declares only what is its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from gpusizer.cli.options import EngineOpt, GpuOpt, GpusOpt, KvDtypeOpt, ModelArg, PpOpt, QuantOpt, TpOpt
from gpusizer.errors import BadInputError

__all__ = ["Deployment", "deployment_command"]

_NO_DEFAULT = inspect.Parameter.empty
# (name, alias, default), in the order --help lists them
_SHARED: tuple[tuple[str, Any, Any], ...] = (
    ("model", ModelArg, _NO_DEFAULT),
    ("gpu", GpuOpt, None),
    ("gpus", GpusOpt, None),
    ("tp", TpOpt, None),
    ("pp", PpOpt, None),
    ("quant", QuantOpt, None),
    ("kv_dtype", KvDtypeOpt, "auto"),
    ("engine", EngineOpt, None),
)


@dataclass(frozen=True)
class Deployment:
    """What the shared options say: the model, the GPU, and how the model is laid out on it."""

    model: str
    gpu: str | None
    gpus: int | None
    tp: int | None
    pp: int | None
    quant: str | None
    kv_dtype: str
    engine: str | None

    def layout(self) -> dict[str, Any]:
        """The keyword arguments of ``api.fit``/``perf``/``simulate`` after MODEL and GPU."""
        return {k: v for k, v in asdict(self).items() if k not in ("model", "gpu")}

    def require_gpu(self, *alternatives: object, accepted: str = "a GPU name (see `gpusizer gpus`)") -> None:
        """Refuse a command given no --gpu and none of the ``alternatives`` that stand for one."""
        if self.gpu is None and all(a is None for a in alternatives):
            raise BadInputError("--gpu", "missing", accepted)


def deployment_command(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn(deployment: Deployment, **own_options)`` as a typer command taking the shared
    options first, then ``fn``'s own (its parameters after the first)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    shared = [inspect.Parameter(name, kind, annotation=alias, default=d) for name, alias, d in _SHARED]
    own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
    params = [*shared, *own]

    @functools.wraps(fn)
    def command(**values: Any) -> None:
        fn(Deployment(**{name: values.pop(name) for name, _, _ in _SHARED}), **values)

    command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return command
