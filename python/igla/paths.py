"""Where igla keeps indexes and downloads: $IGLA_HOME, else ~/.cache/igla (as the igla CLI)."""
from __future__ import annotations

import os

from . import _igla


def igla_home() -> str:
    """$IGLA_HOME, else ~/.cache/igla."""
    home = os.environ.get("IGLA_HOME")
    if home:
        return home
    return os.path.join(os.environ.get("HOME") or "/tmp", ".cache", "igla")


def default_index_path() -> str:
    """Where igla.load() looks by default: $IGLA_HOME/glove-100d.igla ($IGLA_HOME defaults to ~/.cache/igla)."""
    return os.path.join(igla_home(), _igla.DEFAULT_INDEX_NAME)
