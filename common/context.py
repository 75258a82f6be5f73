"""What the kit keeps per app (settings, engine, metrics, OpenAPI), reachable from any view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

from flask import current_app

from common.lifecycle import ModelEngine
from common.metrics import ServiceMetrics
from common.openapi import OpenAPIDocument
from common.settings import ServiceSettings


@dataclass
class ServiceContext:
    """What the kit keeps per app, reachable as ``current_app.extensions["suite"]``."""

    name: str
    settings: ServiceSettings
    engine: ModelEngine
    metrics: ServiceMetrics
    openapi: OpenAPIDocument
    open_endpoints: frozenset[str]
    """Endpoints whose operation is declared ``open=True``: reachable without the API key."""


EngineT = TypeVar("EngineT", bound=ModelEngine)


def service_context() -> ServiceContext:
    """The current app's :class:`ServiceContext`."""
    return current_app.extensions["suite"]


def current_engine(engine_class: type[EngineT]) -> EngineT:
    """The current app's engine, typed as the service's engine class (``current_engine(AsrEngine)``)."""
    return cast(EngineT, service_context().engine)
