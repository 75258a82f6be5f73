"""Routes that document themselves: a Blueprint whose ``api`` decorator also records OpenAPI.

The document is built from the same pydantic models the views validate with (a multipart body is
the validating form model plus its :class:`Upload` file fields), so ``/openapi.json`` cannot drift
from what the code accepts. The decorator's ``open=True`` is also what the app's auth reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint
from pydantic import BaseModel

from common.errors import ApiError, BadRequest, NotFound, Overloaded, PayloadTooLarge, ServiceUnavailable

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR_DESCRIPTIONS = {
    BadRequest.status: "Invalid request; `error.param` names the field.",
    401: "Missing or wrong API key.",
    NotFound.status: "Unknown route, model or resource.",
    PayloadTooLarge.status: "Request body too large.",
    Overloaded.status: "Queue full; retry after `Retry-After` seconds.",
    ServiceUnavailable.status: "Model not loaded yet or shutting down.",
}


class ErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None = None
    code: str


class ErrorResponse(BaseModel):
    """Body of every non-2xx answer."""

    error: ErrorDetail


MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Upload:
    """A file field of a multipart body (the other fields come from the operation's request model)."""

    name: str
    required: bool = True
    description: str = ""


@dataclass
class Operation:
    """One documented route + method."""

    rule: str
    method: str
    summary: str
    endpoint: str = ""
    """Flask endpoint of the view (``blueprint.function``)."""
    request: type[BaseModel] | None = None
    request_content_type: str = "application/json"
    uploads: tuple[Upload, ...] = ()
    """File fields; with any, the body is documented as ``multipart/form-data``."""
    response: type[BaseModel] | None = None
    response_content_type: str = "application/json"
    response_schema: dict[str, Any] | None = None
    errors: tuple[int, ...] = (400,)
    tags: tuple[str, ...] = ()
    open: bool = False  # reachable without the API key


class ApiBlueprint(Blueprint):
    """A Blueprint whose :meth:`api` registers a view and its OpenAPI operation together."""

    def __init__(self, name: str, import_name: str, **kwargs: Any) -> None:
        super().__init__(name, import_name, **kwargs)
        self.operations: list[Operation] = []
        self.websocket_endpoints: set[str] = set()
        """WebSocket endpoints: they check the API key themselves after accepting (common.websocket)."""

    def api(
        self,
        rule: str,
        *,
        methods: Iterable[str] = ("GET",),
        summary: str,
        **operation: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated view for ``rule`` and document it (see :class:`Operation`)."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            method_list = [m.upper() for m in methods]
            self.add_url_rule(rule, view_func=view, methods=method_list)
            for method in method_list:
                self.operations.append(Operation(rule, method, summary, f"{self.name}.{view.__name__}", **operation))
            return view

        return decorator


@dataclass
class OpenAPIDocument:
    """Collects operations and renders an OpenAPI 3.1 document."""

    title: str
    version: str
    description: str = ""
    operations: list[Operation] = field(default_factory=list)

    def render(self, auth_enabled: bool) -> dict[str, Any]:
        """The OpenAPI document as a dict."""
        components: dict[str, Any] = {}
        paths: dict[str, dict[str, Any]] = {}
        error_ref = self._schema(ErrorResponse, components, "serialization")
        for op in self.operations:
            path, params = _openapi_path(op.rule)
            entry: dict[str, Any] = {
                "summary": op.summary,
                "operationId": f"{op.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_') or 'root'}",
                "responses": {"200": {"description": "OK", "content": self._response_content(op, components)}},
            }
            if op.tags:
                entry["tags"] = list(op.tags)
            if params:
                entry["parameters"] = [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                    for name in params
                ]
            if op.request is not None:
                entry["requestBody"] = {"required": True, "content": self._request_content(op, components)}
            statuses = set(op.errors) | {ServiceUnavailable.status}
            if op.request is not None or params:
                statuses |= {BadRequest.status, PayloadTooLarge.status}
            if auth_enabled and not op.open:
                statuses.add(401)
                entry["security"] = [{"bearer": []}]
            for status in sorted(statuses):
                entry["responses"][str(status)] = {
                    "description": _ERROR_DESCRIPTIONS.get(status, "Error"),
                    "content": {"application/json": {"schema": error_ref}},
                }
            paths.setdefault(path, {})[op.method.lower()] = entry
        document: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {"schemas": components},
        }
        if auth_enabled:
            document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        return document

    def _request_content(self, op: Operation, components: dict[str, Any]) -> dict[str, Any]:
        assert op.request is not None
        if not op.uploads:
            return {op.request_content_type: {"schema": self._schema(op.request, components)}}
        schema = op.request.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        for upload in op.uploads:
            schema["properties"][upload.name] = {
                "type": "string",
                "format": "binary",
                "description": upload.description,
            }
            if upload.required:
                schema.setdefault("required", []).append(upload.name)
        name = f"{op.request.__name__}Multipart"
        components[name] = schema
        return {MULTIPART: {"schema": {"$ref": f"#/components/schemas/{name}"}}}

    def _response_content(self, op: Operation, components: dict[str, Any]) -> dict[str, Any]:
        if op.response is not None:
            schema = self._schema(op.response, components, "serialization")
        else:
            schema = op.response_schema or {}
        return {op.response_content_type: {"schema": schema}}

    @staticmethod
    def _schema(model: type[BaseModel], components: dict[str, Any], mode: str = "validation") -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _openapi_path(rule: str) -> tuple[str, list[str]]:
    params = [m.group(2) for m in _CONVERTER.finditer(rule)]
    return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule), params


__all__ = ["MULTIPART", "ApiBlueprint", "ApiError", "ErrorResponse", "OpenAPIDocument", "Operation", "Upload"]
