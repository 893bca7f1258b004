"""The error tree: expected outcomes a user can fix, kept apart from bugs.

Every ``GpusizerError`` carries one line for the user; the shell prints that line and
exits with status 2 (bad input). A traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BadInputError",
    "GpusizerError",
    "NotInCatalogueError",
]


class GpusizerError(Exception):
    """Base of every expected, user-facing error."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInputError(GpusizerError):
    """A value the user gave is out of range or malformed; ``field`` names it.

    Name the field as the Python API's keyword and the web API's JSON key spell it
    (``users``, ``max_model_len``: the fields of ``domain.options``), not as a CLI flag
    (``--users``): the same checks serve all three surfaces, and the CLI prints the line as
    it is, as it does for its own option values. Only the CLI shell names its flags."""

    def __init__(self, field: str, problem: str, accepted: str | None = None) -> None:
        text = f"{field}: {problem}"
        if accepted:
            text += f" (accepted: {accepted})"
        super().__init__(text)
        self.field = field


class NotInCatalogueError(GpusizerError):
    """A name that resolves to nothing; carries the closest names for "did you mean"."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str]) -> None:
        text = f"{kind}: unknown {kind} {name!r}"
        if suggestions:
            text += "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
        super().__init__(text)
        self.kind = kind
        self.name = name
        self.suggestions = list(suggestions)
