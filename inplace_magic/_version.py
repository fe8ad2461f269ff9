"""The version of inplace_magic. It is written once, in package.json: the build reads it there
(pyproject.toml, ``[tool.hatch.version]``) into the package metadata, which this reads."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    try:
        return version("inplace_magic")
    except PackageNotFoundError:  # run from a source tree that was never installed
        package = json.loads((Path(__file__).resolve().parents[1] / "package.json").read_text("utf-8"))
        return str(package["version"])


__version__ = _version()
