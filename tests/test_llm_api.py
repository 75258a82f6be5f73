"""LLM routes in process, on the real local model (Qwen2.5-Coder-0.5B GGUF on llama.cpp's llama-server)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading

import pytest

from tests.shared import wait_until

GREEDY = {"temperature": 0, "seed": 7}


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def fake_client(fake_app):
    """The llm routes on the fake backend: no weights, for route and error tests."""
    return fake_app("llm").test_client()


def test_health_has_the_seed_shape(llm_client) -> None:
    body = llm_client.get("/health").json
    assert body["status"] == "ok" and body["model"] == "Qwen2.5-Coder-0.5B-Instruct"


def test_health_and_metrics_show_the_slots(llm_client, llm_settings) -> None:
    body = llm_client.get("/health").json
    parallel = llm_settings.options["parallel"]
    assert body["slots"] == {"total": parallel, "busy": 0, "idle": parallel}
    assert body["waiting"] == 0 and body["engine"]["state"] == "ready"
    metrics = llm_client.get("/metrics").get_data(as_text=True)
    assert f'llm_slots{{service="llm",state="idle"}} {float(parallel)}' in metrics
    assert 'llm_slots{service="llm",state="waiting"} 0.0' in metrics


def test_while_llama_server_restarts_the_service_is_not_ready_and_says_why(llm_engine, llm_client, monkeypatch) -> None:
    supervisor = llm_engine._backend._supervisor
    release = threading.Event()
    command = supervisor._command
    monkeypatch.setattr(supervisor, "_command", lambda port: release.wait() and command(port))
    pid = supervisor.status().pid
    os.kill(pid, signal.SIGKILL)
    try:
        wait_until(lambda: supervisor.status().state == "restarting", "the restart")
        assert llm_client.get("/readyz").status_code == 503
        body = llm_client.get("/health").json
        assert body["status"] == "degraded" and "killed by signal 9" in body["engine"]["last_exit"]
        refused = llm_client.post("/api/chat", json={"messages": _user("hi"), "max_tokens": 4})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "killed by signal 9" in refused.json["error"]["message"]
    finally:
        release.set()
    wait_until(lambda: llm_client.get("/readyz").status_code == 200, "ready again", limit=300)
    assert llm_client.post("/api/chat", json={"messages": _user("hi"), "max_tokens": 4}).status_code == 200


def test_english_answer(llm_client) -> None:
    response = llm_client.post(
        "/api/chat", json={"messages": _user("What is 2+2? Reply with the number only."), **GREEDY}
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert "4" in body["content"]
    assert body["model"] == "Qwen2.5-Coder-0.5B-Instruct"
    assert body["raw"]["object"] == "chat.completion"
    assert body["raw"]["choices"][0]["message"]["content"] == body["content"]
    assert body["raw"]["usage"]["completion_tokens"] > 0


def test_chinese_answer_with_system_prompt(llm_client) -> None:
    messages = [
        {"role": "system", "content": "你是一个精简的助手"},
        {"role": "user", "content": "请用一句话总结人工智能"},
    ]
    body = llm_client.post("/api/chat", json={"messages": messages, "max_tokens": 60, **GREEDY}).json
    assert re.search(r"[\u4e00-\u9fff]", body["content"]), body["content"]


def test_seed_model_name_is_accepted(llm_client) -> None:
    body = llm_client.post(
        "/api/chat", json={"model": "Qwen/Qwen3-Coder-480B-A35B-Instruct", "messages": _user("Say hi"), "max_tokens": 8}
    ).json
    assert body["content"]


def test_stream_deltas_concatenate_to_the_whole_answer(llm_client) -> None:
    request = {"messages": _user("Write a Python function that adds two numbers."), "max_tokens": 48, **GREEDY}
    whole = llm_client.post("/api/chat", json=request).json["content"]
    response = llm_client.post("/api/chat/stream", json=request)
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    deltas = [line["delta"] for line in lines if "delta" in line]
    assert len(deltas) > 5
    assert "".join(deltas) == whole
    assert lines[-1]["event"] == "done"
    assert lines[-1]["finish_reason"] in {"stop", "length"}
    assert lines[-1]["usage"]["completion_tokens"] == len(deltas)


def test_max_tokens_and_stop_are_honoured(llm_client) -> None:
    short = llm_client.post(
        "/api/chat", json={"messages": _user("Tell me a long story about a dragon."), "max_tokens": 5, **GREEDY}
    ).json
    assert short["raw"]["choices"][0]["finish_reason"] == "length"
    assert short["raw"]["usage"]["completion_tokens"] <= 5
    counted = llm_client.post(
        "/api/chat",
        json={"messages": _user("Count from 1 to 10, separated by spaces."), "stop": ["6"], "max_tokens": 60, **GREEDY},
    ).json
    assert "5" in counted["content"] and "6" not in counted["content"] and "7" not in counted["content"]
    assert counted["raw"]["choices"][0]["finish_reason"] == "stop"


def test_openai_completions_json_and_sse(llm_client) -> None:
    request = {
        "model": "Qwen2.5-Coder-0.5B-Instruct",
        "messages": _user("Name a prime number."),
        "max_tokens": 16,
        **GREEDY,
    }
    completion = llm_client.post("/v1/chat/completions", json=request).json
    assert completion["object"] == "chat.completion" and completion["choices"][0]["message"]["role"] == "assistant"
    response = llm_client.post(
        "/v1/chat/completions", json={**request, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert response.mimetype == "text/event-stream"
    frames = [f.removeprefix("data: ") for f in response.get_data(as_text=True).split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == completion["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_tools_are_accepted(llm_client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    response = llm_client.post(
        "/v1/chat/completions",
        json={"messages": _user("Weather in Paris?"), "tools": tools, "max_tokens": 40, **GREEDY},
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
        ({"messages": [{"role": "user"}]}, "messages.0"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": -0.1}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "top_p": 1.5}, "top_p"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "hi"}], "stop": ""}, "stop"),
    ],
)
def test_bad_requests_name_the_field(fake_client, body: dict, param: str) -> None:
    for path in ("/api/chat", "/api/chat/stream", "/v1/chat/completions"):
        response = fake_client.post(path, json=body)
        assert response.status_code == 400, (path, response.json)
        assert response.json["error"]["param"].startswith(param), response.json


def test_unknown_model_is_404(fake_client) -> None:
    response = fake_client.post("/api/chat", json={"model": "gpt-5", "messages": _user("hi")})
    assert response.status_code == 404
    assert "fake-model" in response.json["error"]["message"]


def test_prompt_over_the_context_is_400(llm_client) -> None:
    long = _user("word " * 6000)
    for path in ("/api/chat", "/api/chat/stream"):
        response = llm_client.post(path, json={"messages": long, "max_tokens": 10})
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert response.json["error"]["code"] == "context_length_exceeded"
    assert llm_client.post("/api/chat", json={"messages": _user("hi"), "max_tokens": 4}).status_code == 200


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"\u00ff": False}}, "response_format.type"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"tools": [{"type": "function"}]}, "tools.0.function"),
        ({"tools": [{"function": {"name": "x"}}]}, "tools.0.type"),
        ({"tool_choice": "always"}, "tool_choice"),
    ],
)
def test_malformed_structured_fields_are_400(fake_client, extra: dict, param: str) -> None:
    response = fake_client.post("/v1/chat/completions", json={"messages": _user("hi"), "max_tokens": 4, **extra})
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"].startswith(param.split(".")[0])


def test_json_schema_response_format_constrains_the_answer(llm_client) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    body = llm_client.post(
        "/v1/chat/completions",
        json={
            "messages": _user("What is 3+4? Reply in JSON."),
            "max_tokens": 30,
            **GREEDY,
            "response_format": {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}},
        },
    ).json
    assert isinstance(json.loads(body["choices"][0]["message"]["content"])["answer"], int)


def test_a_whole_answer_is_put_together_from_its_chunks() -> None:
    from llm_service.backends import completion_from_chunks

    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m"}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_", "arguments": ""}}
    deltas = [
        {"role": "assistant", "content": None},
        {"content": "Let me"},
        {"content": " look."},
        {"tool_calls": [call]},
        {"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
    ]
    chunks = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}})
    completion = completion_from_chunks(chunks)
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    empty = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}]
    assert completion_from_chunks(empty)["choices"][0]["message"] == {"role": "assistant", "content": ""}
