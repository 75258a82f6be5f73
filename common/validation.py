"""Request parsing with pydantic: every 400 names the field that is wrong."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from common import jsonio
from common.errors import BadRequest

ModelT = TypeVar("ModelT", bound=BaseModel)


def validation_error(exc: ValidationError) -> BadRequest:
    """Turn the first pydantic error into a 400 naming its field (``param``)."""
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if param:
        message = f"{param}: {message}"
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return BadRequest(message, param=param, code="invalid_" + first["type"].split(".")[0])


def validate(model: type[ModelT], data: Any) -> ModelT:
    """Validate plain data against ``model``.

    Raises:
        BadRequest: naming the first invalid field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def json_body(model: type[ModelT]) -> ModelT:
    """Parse the request body as JSON (whatever the Content-Type) and validate it.

    Raises:
        BadRequest: the body is not valid UTF-8 JSON, not an object, or fails validation.
    """
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object", code="missing_body")
    try:
        data = jsonio.loads(raw)
    except ValueError as exc:  # includes invalid UTF-8 and nesting deeper than 1024
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return validate(model, data)


def form_body(model: type[ModelT], list_fields: Iterable[str] = ()) -> ModelT:
    """Validate a multipart/urlencoded form; empty fields count as absent.

    ``list_fields`` are read with ``getlist`` under both ``name`` and ``name[]`` (the spelling
    the OpenAI SDK uses for arrays).

    Raises:
        BadRequest: naming the first invalid field.
    """
    data: dict[str, Any] = {k: v for k, v in request.form.items() if v != "" and not k.endswith("[]")}
    for name in list_fields:
        values = [v for v in request.form.getlist(name) + request.form.getlist(f"{name}[]") if v != ""]
        if values:
            data[name] = values
    return validate(model, data)


def uploaded_file(field: str = "file") -> bytes:
    """The bytes of a multipart file field.

    Raises:
        BadRequest: the request is not multipart or the field is missing.
    """
    if request.mimetype != "multipart/form-data":
        raise BadRequest(
            f"send multipart/form-data with a `{field}` file field (got {request.mimetype or 'no body'})",
            param=field,
            code="missing_file",
        )
    upload = request.files.get(field)
    if upload is None:
        raise BadRequest(f"the `{field}` file field is required", param=field, code="missing_file")
    return upload.read()
