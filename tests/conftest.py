"""Shared fixtures: clean env, real models loaded once per session, real gunicorn services, fake backends.

Each service ``X`` of ``common.services.SERVICES`` gets four fixtures: ``X_settings`` (the shipped
offline config, without env overrides), ``X_engine`` (its real models, loaded once per session),
``X_client`` (a Flask test client on a fresh app around that engine) and ``X_server`` (the service
under real gunicorn, started by scripts/services.py on a free port, once per session).

``voice_suite`` is the four services on their real models and the console (the page and the voice agent)
under gunicorn, booted once per session for every test that talks to the console.

``fake_app(name, **settings)`` builds a service's app on its ``fake`` backend (no weights, ready in
milliseconds) for route and error tests that don't need a real model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from common.lifecycle import ModelEngine
from common.services import SERVICES, SUITE_ENV_PREFIXES, Service
from common.settings import ServiceSettings
from harness.browser import console_suite
from harness.launch import RunningService, launch

FAKE_MODEL = "fake-model"


def _suite_env_vars() -> list[str]:
    return [k for k in os.environ if k.startswith(SUITE_ENV_PREFIXES)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees suite settings from the developer's shell."""
    for name in _suite_env_vars():
        monkeypatch.delenv(name)


def _shipped(settings_class: type[ServiceSettings]) -> ServiceSettings:
    saved = {k: os.environ.pop(k) for k in _suite_env_vars()}
    try:
        return settings_class.load()
    finally:
        os.environ.update(saved)


def service_fixtures(service: Service) -> tuple[Any, Any, Any, Any]:
    """The four fixtures of ``service`` (see the module docstring)."""
    name = service.name

    @pytest.fixture(scope="session", name=f"{name}_settings")
    def settings() -> ServiceSettings:
        return _shipped(service.settings_class())

    @pytest.fixture(scope="session", name=f"{name}_engine")
    def engine(request: pytest.FixtureRequest) -> Iterator[ModelEngine]:
        loaded = service.engine_class()(request.getfixturevalue(f"{name}_settings"))
        loaded.start(background=False)
        assert loaded.status == "ready", loaded.load_error
        yield loaded
        loaded.close()

    @pytest.fixture(name=f"{name}_client")
    def client(request: pytest.FixtureRequest) -> Any:
        create_app = service.create_app()
        app = create_app(request.getfixturevalue(f"{name}_settings"), engine=request.getfixturevalue(f"{name}_engine"))
        return app.test_client()

    @pytest.fixture(scope="session", name=f"{name}_server")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
        with launch(name, tmp_path_factory.mktemp(f"{name}-run")) as running:
            yield running

    return settings, engine, client, server


for _service in SERVICES.values():  # pytest finds fixtures among the module's names
    for _index, _fixture in enumerate(service_fixtures(_service)):
        globals()[f"{_service.name}_fixture_{_index}"] = _fixture


@pytest.fixture(scope="session")
def voice_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    """The four services (real offline models) and the console, each under gunicorn; keyed by service name."""
    with console_suite(tmp_path_factory.mktemp("voice-suite")) as running:
        yield running


def fake_settings(name: str, **update: Any) -> ServiceSettings:
    """Service ``name``'s shipped settings on its ``fake`` backend (model ``fake-model``), with ``update`` merged in.

    A single-model service keeps its aliases; the embedding service serves ``fake-model`` (alias
    ``fake-alias``) and ``fake-small``.
    """
    service = SERVICES[name]
    data = _shipped(service.settings_class()).model_dump()
    if "models" in data:
        fake = {"backend": "fake", "aliases": ["fake-alias"]}
        data.update(models={FAKE_MODEL: fake, "fake-small": {"backend": "fake"}}, default_model=FAKE_MODEL)
    elif "backend" in data:  # the console has no model
        data.update(backend="fake", model_name=FAKE_MODEL, options={})
    for key, value in update.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return service.settings_class().model_validate(data)


@pytest.fixture
def fake_app() -> Iterator[Callable[..., Flask]]:
    """``fake_app(name, **settings_update)``: an app on the fake backend, loaded; closed after the test."""
    engines: list[ModelEngine] = []

    def build(name: str, **update: Any) -> Flask:
        service = SERVICES[name]
        settings = fake_settings(name, **update)
        engine = service.engine_class()(settings)
        engines.append(engine)
        engine.start(background=False)
        assert engine.status == "ready", engine.load_error
        return service.create_app()(settings, engine=engine)

    yield build
    for engine in engines:
        engine.close()
