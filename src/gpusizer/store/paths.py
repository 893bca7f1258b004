"""Where gpusizer keeps what users store: the runs database and calibration profiles, under
the user data directory (``$XDG_DATA_HOME/gpusizer``, else ``~/.local/share/gpusizer``;
``$GPUSIZER_HOME`` overrides both)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from gpusizer.errors import BadInputError

__all__ = ["data_dir", "default_db", "profile_path", "profiles_dir"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def data_dir() -> Path:
    home = os.environ.get("GPUSIZER_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gpusizer"


def default_db() -> Path:
    return data_dir() / "runs.sqlite"


def profiles_dir() -> Path:
    return data_dir() / "profiles"


def profile_path(name: str, field: str = "--profile") -> Path:
    """The file of profile ``name``; the name is checked so it can never leave the folder."""
    if not _NAME.fullmatch(name) or name.endswith((".yaml", ".yml")):
        raise BadInputError(field, f"{name!r} is not a profile name", "letters, digits, '_', '.', '-' (≤ 64)")
    return profiles_dir() / f"{name}.yaml"
