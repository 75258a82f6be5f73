"""The voice agent against the real offline models under gunicorn, through the stock ``openai`` SDK.

Whole spoken conversations (two turns, a barge-in, a truncation) in English and Chinese, GA and beta;
text-only and push-to-talk sessions; bad events, the session cap, a vanishing client, the API key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

import core
from harness.browser import console_suite
from harness.launch import RunningService, free_port, launch
from harness.realtime import RATE, Turn, pcm24, reply, say
from harness.realtime import connect as sdk_connect
from harness.speech import parse_wav, trimmed

pytestmark = pytest.mark.slow

LINES = {
    "en": {
        "name": "My name is Anna, please remember my name.",
        "ask": "What is my name?",
        "story": "Please count from one to one hundred in words.",
        "stop": "Stop please, how are you today?",
        "answer": "anna",
    },
    "zh": {
        "name": "我的名字叫小明，请记住我的名字。",
        "ask": "我叫什么名字？",
        "story": "请用中文从一数到一百。",
        "stop": "停一下，你今天好吗？",
    },
}
BRIEF = (
    "You are a helpful voice assistant. Answer briefly, in one or two short sentences, in the language of the question."
)
LONG = "Do exactly what you are asked, in full, separating the items with commas."
"""With the counting request: a reply long enough (the length limit) to be still in progress when the person
speaks again, whatever the model makes of it otherwise."""


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    with console_suite(tmp_path_factory.mktemp("agent-run")) as running:
        yield running


@pytest.fixture(scope="module")
def speech(suite: dict[str, RunningService]) -> dict[str, dict[str, bytes]]:
    """Every line of :data:`LINES` spoken by our TTS, as pcm16 at 24 kHz."""
    spoken: dict[str, dict[str, bytes]] = {}
    with core.TTSClient(suite["tts"].url) as tts:
        for language, lines in LINES.items():
            for name, text in lines.items():
                if name != "answer":
                    samples, rate = parse_wav(tts.synthesize(text))
                    spoken.setdefault(language, {})[name] = pcm24(trimmed(samples), rate)
    return spoken


async def converse(url: str, language: str, beta: bool, spoken: dict[str, bytes]) -> None:
    async with sdk_connect(url, beta=beta) as connection:
        session = {"instructions": BRIEF, "temperature": 0}
        if beta:
            session["input_audio_transcription"] = {"language": language}
        else:
            session.update(type="realtime", audio={"input": {"transcription": {"language": language}}})
        await connection.session.update(session=session)
        # turn 1 and 2: the reply to the second needs the first (history)
        turns = []
        for line in ("name", "ask"):
            listening = asyncio.create_task(reply(connection))
            await say(connection, spoken[line], silence_s=1.0, speed=2.0)
            turns.append(await listening)
            assert turns[-1].status == "completed" and turns[-1].audio and turns[-1].transcript, turns[-1]
            assert not turns[-1].after_done
        # the name as the ASR heard it (Chinese names have homophones)
        name = LINES[language]["answer"] if language == "en" else turns[0].heard.split("叫")[1][:2]
        assert name in turns[1].transcript.lower(), (turns[0].heard, turns[1].transcript)
        # a barge-in: a long reply cut off by speech; the new turn is answered
        await connection.session.update(session={"instructions": LONG})
        story = Turn()
        listening = asyncio.create_task(reply(connection, story))
        await say(connection, spoken["story"], silence_s=0.0, speed=2.0)
        while story.first_audio_at is None and not listening.done():
            await say(connection, bytes(RATE // 5))
        await say(connection, spoken["stop"], silence_s=1.0, speed=2.0)
        await listening
        assert story.status == "cancelled" and story.audio, story
        follow = await reply(connection, Turn(), timeout=120)  # the interruption is a turn of its own
        assert story.after_done == [] and follow.status in ("completed", "cancelled")
        assert follow.heard, "the interrupting turn was lost"
        # truncation: only what was heard stays in the cancelled reply's item
        heard_ms = len(story.audio) // 2 // 24 // 2  # half of what came
        await connection.conversation.item.truncate(item_id=story.item_id, content_index=0, audio_end_ms=heard_ms)
        await connection.conversation.item.retrieve(item_id=story.item_id)
        truncated = retrieved = None
        async for event in connection:
            if event.type == "conversation.item.truncated":
                truncated = event
            elif event.type == "conversation.item.retrieved":
                retrieved = event.item
                break
        assert truncated is not None and truncated.audio_end_ms == heard_ms
        heard = retrieved.content[0].transcript
        assert len(heard) < len(story.transcript), (heard, story.transcript)


@pytest.mark.parametrize(("language", "beta"), [("en", False), ("zh", False), ("en", True)])
def test_spoken_conversation(
    suite: dict[str, RunningService], speech: dict[str, dict[str, bytes]], language: str, beta: bool
) -> None:
    asyncio.run(converse(suite["console"].url, language, beta, speech[language]))


def test_text_only_and_push_to_talk(suite: dict[str, RunningService], speech: dict[str, dict[str, bytes]]) -> None:
    async def run() -> None:
        async with sdk_connect(suite["console"].url) as connection:
            await connection.session.update(
                session={"type": "realtime", "output_modalities": ["text"], "instructions": BRIEF}
            )
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}
            )
            await connection.response.create()
            text = await reply(connection)
            assert text.status == "completed" and text.transcript and not text.audio
            await connection.session.update(
                session={
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {"input": {"turn_detection": None}},
                }
            )
            await say(connection, speech["en"]["ask"], speed=4.0)
            await connection.input_audio_buffer.commit()
            await connection.response.create()  # waits for the committed turn's transcript
            spoken = await reply(connection)
            assert spoken.status == "completed" and spoken.audio and "name" in spoken.heard.lower()
            assert not any(kind == "input_audio_buffer.speech_started" for _, kind in spoken.events)

    asyncio.run(run())


def raw(url: str, **headers: str) -> ClientConnection:
    return connect(url.replace("http", "ws", 1) + "/v1/realtime", additional_headers=headers, open_timeout=30)


def next_event(socket: ClientConnection, kind: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if event["type"] == kind:
            return event


BAD_EVENTS: list[tuple[Any, str]] = [
    ("not json", "invalid_json"),
    ([1, 2], "invalid_json"),
    ({"type": "no.such.event", "event_id": "c1"}, "unknown_event"),
    ({"type": "input_audio_buffer.append", "audio": "%%%"}, "invalid_audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}, "invalid_audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(16 * 1024 * 1024)).decode()}, "too_large"),
    (
        {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},
        "unsupported_format",
    ),
    ({"type": "session.update", "session": {"audio": {"output": {"voice": "nobody"}}}}, "invalid_request"),
    ({"type": "response.cancel"}, "response_cancel_not_active"),
    ({"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": 1}, "item_not_found"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "robot"}}, "invalid_request"),
]


def test_bad_events_get_an_error_each_and_the_session_goes_on(suite: dict[str, RunningService]) -> None:
    with raw(suite["console"].url) as socket:
        next_event(socket, "session.created")
        socket.send(b"\x00binary")
        assert next_event(socket, "error")["error"]["code"] == "unexpected_binary"
        for event, code in BAD_EVENTS:
            socket.send(event if isinstance(event, str) else json.dumps(event))
            error = next_event(socket, "error")["error"]
            assert error["code"] == code, (event if isinstance(event, str) else str(event)[:120], error)
            if isinstance(event, dict) and event.get("event_id"):
                assert error["event_id"] == event["event_id"]
        socket.send(json.dumps({"type": "session.update", "session": {"output_modalities": ["text"]}}))
        next_event(socket, "session.updated")
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say yes."}]}
        socket.send(json.dumps({"type": "conversation.item.create", "item": item}))
        socket.send(json.dumps({"type": "response.create"}))
        assert next_event(socket, "response.done")["response"]["status"] == "completed"


def test_the_session_cap_refuses_clearly_and_a_vanished_client_frees_its_work(suite: dict[str, RunningService]) -> None:
    url = suite["console"].url
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(raw(url)) for _ in range(4)]
        for socket in held:
            next_event(socket, "session.created")
        with raw(url) as extra:
            refused = json.loads(extra.recv(timeout=30))
            assert refused["error"]["type"] == "rate_limit_error"
            with pytest.raises(ConnectionClosed):
                extra.recv(timeout=30)
            assert extra.close_code == 1013
        # the first one starts a long reply and vanishes mid-way
        socket = held[0]
        socket.send(json.dumps({"type": "session.update", "session": {"instructions": LONG}}))
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a long story."}]}
        socket.send(json.dumps({"type": "conversation.item.create", "item": item}))
        socket.send(json.dumps({"type": "response.create"}))
        next_event(socket, "response.output_audio.delta")
        socket.socket.close()  # no closing handshake: the client is simply gone
        gone = time.monotonic()
        while suite["asr"].metric("engine_queue_depth", queue="live_sessions") > 3:
            assert time.monotonic() - gone < 5, "the vanished session's ASR session was not closed"
            time.sleep(0.05)
        while suite["llm"].metric("http_requests_in_progress") > 1:  # /metrics itself counts
            assert time.monotonic() - gone < 5, "the vanished session's LLM stream was not stopped"
            time.sleep(0.05)
        with raw(url) as again:  # its slot is free
            next_event(again, "session.created")


def test_api_key_and_a_missing_asr(tmp_path: Path) -> None:
    env = {"CONSOLE__SERVER__API_KEY": "agent-s3cret", "ASR_URL": f"http://127.0.0.1:{free_port()}"}
    with launch("console", tmp_path, env) as console:
        with raw(console.url) as socket:
            assert json.loads(socket.recv(timeout=30))["error"]["type"] == "authentication_error"
            with pytest.raises(ConnectionClosed):
                socket.recv(timeout=30)
            assert socket.close_code == 1008
        with raw(console.url, Authorization="Bearer agent-s3cret") as socket:
            error = json.loads(socket.recv(timeout=30))["error"]
            assert "ASR service is not reachable" in error["message"], error
            with pytest.raises(ConnectionClosed):
                socket.recv(timeout=30)
            assert socket.close_code == 1013
