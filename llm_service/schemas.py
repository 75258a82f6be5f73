"""Wire schemas of the LLM service: the seed's chat body (a subset of OpenAI's) and responses."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TextPart(BaseModel):
    """OpenAI content part; only text is supported."""

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message. ``content`` is a string (or text parts); assistant messages with tool calls may omit it."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_needed(self) -> Self:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs `content`")
        return self


class ResponseFormat(BaseModel):
    """OpenAI ``response_format``: plain text, any JSON object, or JSON matching a schema."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class FunctionSpec(BaseModel):
    """A callable tool's name, description and JSON-schema parameters."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    """OpenAI tool definition."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"]
    function: FunctionSpec


class NamedToolChoice(BaseModel):
    """Force one tool: ``{"type": "function", "function": {"name": ...}}``."""

    type: Literal["function"]
    function: dict[str, str]


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``."""

    include_usage: bool = False


class ChatRequest(BaseModel):
    """`/api/chat`, `/api/chat/stream` and `/v1/chat/completions`. Unknown OpenAI fields go to upstreams."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1, le=1, description="Only 1 is supported")

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if stop == "" or (isinstance(stop, list) and (len(stop) > 8 or any(not s for s in stop))):
            raise ValueError("stop takes one or up to 8 non-empty strings")
        return stop


class ChatResponse(BaseModel):
    """`/api/chat`: the seed's `content`, `model` and the full OpenAI `chat.completion` as `raw`."""

    content: str | None
    model: str
    raw: dict[str, Any]


class StreamLine(BaseModel):
    """`/api/chat/stream` lines: `{"delta"}` per chunk, then `{"event": "done", ...}` (or `"error"`)."""

    delta: str | None = None
    event: Literal["done", "error"] | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    message: str | None = None


class ChatCompletion(BaseModel):
    """OpenAI `chat.completion` (documented loosely; the upstream's fields pass through)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]
