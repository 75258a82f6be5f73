"""Backend registries: a name -> ``module:Class`` table that imports a backend only when it is created.

Every service has one (``<service>/backends/__init__.py``: ``BACKENDS``); a new backend is one module
plus one entry. Every backend class takes ``(options: dict, cpu_threads: int)`` and validates its own
``options`` (the config's ``options:`` block).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

B = TypeVar("B")


def import_object(path: str) -> Any:
    """Import ``package.module:Name`` and return ``Name``."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class BackendRegistry(Mapping[str, str], Generic[B]):
    """Backend names of one service, each with the ``module:Class`` that implements it.

    ``BackendRegistry(__name__, whisper="whisper:WhisperBackend")`` in ``asr_service.backends`` names
    ``asr_service.backends.whisper:WhisperBackend``. A read-only mapping (``name in BACKENDS``,
    ``sorted(BACKENDS)``) plus :meth:`create`.
    """

    def __init__(self, package: str, **entries: str) -> None:
        self.service = package.split(".")[0].removesuffix("_service")
        self._entries = {name: f"{package}.{path}" for name, path in entries.items()}

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, name: str) -> None:
        """Raise ``ValueError`` (a settings validation error) for a name not registered here."""
        if name not in self._entries:
            raise ValueError(f"unknown backend {name!r} for {self.service}; known: {sorted(self._entries)}")

    def backend_class(self, name: str) -> type[B]:
        """The class registered as ``name`` (importing its module now)."""
        return import_object(self._entries[name])

    def create(self, name: str, options: dict[str, Any], cpu_threads: int) -> B:
        """Instantiate backend ``name`` (importing its module now).

        Args:
            name: a registered backend name.
            options: the backend's own options; the backend validates them.
            cpu_threads: threads the model library may use.
        """
        return self.backend_class(name)(options, cpu_threads)
