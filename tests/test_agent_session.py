"""The voice agent's session without HTTP: the protocol's parsing, the history, and the reply invariants.

The LLM, TTS and ASR are small fakes with random delays (the real ones are in test_agent.py); the
invariants are checked over many random interleavings of speech, cancels and requests:
at most one reply in progress; every ``response.created`` gets exactly one ``response.done``; no event of
a reply after its ``response.done``.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common.errors import ApiError, BadRequest
from console_service.agent import AgentServices, AgentSession
from console_service.agent_conversation import Conversation, Item, Span
from console_service.agent_protocol import AgentConfig, Dialect, apply_update, decode_audio
from console_service.agent_response import early_clause
from console_service.settings import AgentSettings
from core import WAV_HEADER_BYTES, wav_file

# -- protocol --

BASE = AgentConfig("be brief", "alloy", 160)


def test_update_reads_both_dialects_shapes() -> None:
    ga = apply_update(
        BASE,
        {
            "type": "realtime",
            "instructions": "hi",
            "output_modalities": ["text"],
            "audio": {
                "input": {"transcription": {"language": "zh"}, "turn_detection": {"silence_duration_ms": 300}},
                "output": {"voice": "nova", "format": {"type": "audio/pcm", "rate": 24000}},
            },
            "max_output_tokens": "inf",
            "unknown_field": 1,
        },
        200,
    )
    assert (ga.instructions, ga.audio_out, ga.language, ga.voice, ga.max_output_tokens) == (
        "hi",
        False,
        "zh",
        "nova",
        200,
    )
    assert ga.turn_detection is not None and ga.turn_detection.silence_duration_ms == 300
    beta = apply_update(
        BASE,
        {"modalities": ["text", "audio"], "voice": "echo", "turn_detection": None, "input_audio_format": "pcm16"},
        200,
    )
    assert (beta.audio_out, beta.voice, beta.turn_detection) == (True, "echo", None)
    assert BASE.voice == "alloy"  # the old config is untouched


@pytest.mark.parametrize(
    "update",
    [
        "not an object",
        {"output_modalities": ["video"]},
        {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        {"input_audio_format": "g711_ulaw"},
        {"max_output_tokens": 0},
        {"temperature": 3},
        {"turn_detection": {"type": "push"}},
        {"turn_detection": {"silence_duration_ms": -5}},
        {"audio": {"input": {"transcription": {"language": "english!"}}}},
        {"instructions": 5},
    ],
)
def test_update_refuses_bad_fields(update: Any) -> None:
    with pytest.raises(BadRequest):
        apply_update(BASE, update, 200)


def test_audio_is_checked() -> None:
    assert decode_audio(base64.b64encode(b"\x01\x02").decode(), 100) == b"\x01\x02"
    for bad in (None, "%%%", base64.b64encode(b"\x01").decode(), base64.b64encode(bytes(400)).decode()):
        with pytest.raises(BadRequest):
            decode_audio(bad, 100)


def test_beta_names_and_shapes() -> None:
    beta, ga = Dialect(beta=True), Dialect()
    assert beta.event_name("response.output_audio.delta") == "response.audio.delta"
    assert beta.event_name("conversation.item.added") == "conversation.item.created"
    assert beta.event_name("conversation.item.done") is None
    assert ga.event_name("response.output_audio.delta") == "response.output_audio.delta"
    assert "modalities" in beta.describe("s", "m", BASE) and "audio" in ga.describe("s", "m", BASE)


# -- conversation --


def test_history_joins_turns_and_drops_the_oldest_first() -> None:
    conversation = Conversation()
    for index, role in enumerate(["user", "user", "assistant", "user", "assistant", "user"]):
        conversation.add(Item(f"i{index}", role, audio=False, text=f"turn {index} " + "word " * 40))
    messages = conversation.messages("system words", budget_tokens=10_000)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"].startswith("turn 0") and "turn 1" in messages[1]["content"]
    short = conversation.messages("system words", budget_tokens=130)
    assert short[0]["role"] == "system" and short[-1]["content"].startswith("turn 5")
    assert short[1]["role"] == "user" and len(short) < len(messages)  # never starts with an orphan reply


def test_truncate_keeps_what_was_heard() -> None:
    item = Item("a", "assistant", audio=True, text="One two three four. Five six seven eight.")
    item.spans = [Span("One two three four.", 0, 1000), Span("Five six seven eight.", 1000, 2000)]
    item.truncate(1500)
    assert item.text == "One two three four. Five six" and item.status == "incomplete"
    with pytest.raises(BadRequest):
        item.truncate(5000)
    with pytest.raises(BadRequest):
        Item("u", "user", audio=True, text="hi").truncate(0)


def test_first_clause_is_cut_early_only_in_unpunctuated_english() -> None:
    assert early_clause("Paris is famous for its art and ") == (["Paris is famous"], "for its art and ")
    assert early_clause("Paris is famous") == ([], "Paris is famous")
    assert early_clause("长城是中国最长的建筑之一它") == ([], "长城是中国最长的建筑之一它")


# -- the session, with fakes --


REPLY = "Sure, here is a reply with a few words. And a second sentence follows it."


class FakeLlm:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prompts: list[list[dict[str, str]]] = []
        self.open_streams = 0

    def chat_stream_lines(self, messages: list[dict[str, str]], **params: Any) -> Iterator[dict[str, Any]]:
        self.prompts.append(messages)
        self.open_streams += 1
        try:
            for word in REPLY.split(" "):
                time.sleep(self.rng.uniform(0, 0.004))
                yield {"delta": word + " "}
            yield {"event": "done", "finish_reason": "stop", "usage": {"prompt_tokens": 5, "completion_tokens": 9}}
        finally:
            self.open_streams -= 1


class FakeTts:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def synthesize_stream(self, text: str, style: str | None = None) -> Iterator[bytes]:
        yield wav_file(b"", 24000)[:WAV_HEADER_BYTES]
        for _ in range(2):
            time.sleep(self.rng.uniform(0, 0.004))
            yield bytes(4800)

    def styles(self) -> dict[str, Any]:
        return {"styles": [{"name": "style1"}], "aliases": {"alloy": "style1"}}


class FakeEar:
    def __init__(self, on_event: Any, on_closed: Any) -> None:
        self.on_event = on_event
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)

    def close(self) -> None:
        self.closed = True


def session_with_fakes(rng: random.Random) -> tuple[AgentSession, list[dict[str, Any]], list[FakeEar], FakeLlm]:
    events: list[dict[str, Any]] = []
    ears: list[FakeEar] = []
    llm = FakeLlm(rng)

    def open_asr(on_event: Any, on_closed: Any) -> FakeEar:
        ears.append(FakeEar(on_event, on_closed))
        return ears[-1]

    services = AgentServices(open_asr, llm, FakeTts(rng), "fake", lambda: {"alloy", "style1"})  # type: ignore[arg-type]
    settings = AgentSettings(audio_chunk_ms=50, transcript_wait_s=5)
    session = AgentSession(settings, services, events.append, beta=rng.random() < 0.3)
    session.start()
    return session, events, ears, llm


def check_invariants(events: list[dict[str, Any]]) -> None:
    """One reply at a time; one done per created; nothing of a reply after its done."""
    in_progress: str | None = None
    finished: set[str] = set()
    for event in events:
        kind, response = event["type"], event.get("response_id")
        if response in finished:
            raise AssertionError(f"{kind} of {response} after its response.done")
        if kind == "response.created":
            assert in_progress is None, f"{event['response']['id']} created while {in_progress} is in progress"
            in_progress = event["response"]["id"]
        elif kind == "response.done":
            done = event["response"]["id"]
            assert done == in_progress and done not in finished
            finished.add(done)
            in_progress = None
    assert in_progress is None, f"{in_progress} never got its response.done"


@pytest.mark.parametrize("seed", range(40))
def test_reply_invariants_hold_under_random_interleavings(seed: int) -> None:
    rng = random.Random(seed)
    session, events, ears, llm = session_with_fakes(rng)
    ear = ears[0]
    turns = 0
    for _ in range(rng.randint(5, 25)):
        action = rng.choice(["speak", "speak", "cancel", "create", "text", "truncate", "wait"])
        try:
            if action == "speak":  # a whole spoken turn as the ASR reports it
                turns += 1
                item = f"item_asr_{turns}"
                ear.on_event({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item})
                time.sleep(rng.uniform(0, 0.01))
                ear.on_event({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 9, "item_id": item})
                ear.on_event({"type": "input_audio_buffer.committed", "item_id": item})
                threading.Timer(
                    rng.uniform(0, 0.02),
                    ear.on_event,
                    [
                        {
                            "type": "conversation.item.input_audio_transcription.completed",
                            "item_id": item,
                            "transcript": "hello",
                        }
                    ],
                ).start()
            elif action == "cancel":
                session.on_client_event({"type": "response.cancel"})
            elif action == "create":
                session.on_client_event({"type": "response.create"})
            elif action == "text":
                item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "typed"}]}
                session.on_client_event({"type": "conversation.item.create", "item": item})
            elif action == "truncate":
                spoken = [i for i in session.conversation.items if i.role == "assistant" and i.audio_ms > 0]
                if spoken:
                    target = rng.choice(spoken)
                    end = int(rng.uniform(0, target.audio_ms))
                    session.on_client_event(
                        {"type": "conversation.item.truncate", "item_id": target.id, "audio_end_ms": end}
                    )
            time.sleep(rng.uniform(0, 0.03))
        except ApiError:
            pass  # e.g. cancelling with nothing in progress: an error event, and the session goes on
    deadline = time.monotonic() + 10
    while session.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    session.close()
    check_invariants(list(events))
    assert llm.open_streams == 0
    assert ear.closed


def test_speech_cancels_the_reply_and_the_new_turn_is_answered() -> None:
    rng = random.Random(1)
    session, events, ears, llm = session_with_fakes(rng)
    llm_slow = llm.chat_stream_lines

    def slow(messages: list[dict[str, str]], **params: Any) -> Iterator[dict[str, Any]]:
        for line in llm_slow(messages, **params):
            time.sleep(0.02)
            yield line

    llm.chat_stream_lines = slow  # type: ignore[method-assign]
    ear = ears[0]
    for index, words in enumerate(["first question", "no wait, second question"]):
        ear.on_event({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": f"u{index}"})
        ear.on_event({"type": "input_audio_buffer.committed", "item_id": f"u{index}"})
        ear.on_event(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": f"u{index}",
                "transcript": words,
            }
        )
        time.sleep(0.15)  # the first reply is under way
    deadline = time.monotonic() + 10
    while sum(e["type"] == "response.done" for e in events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    session.close()
    done = [e["response"] for e in events if e["type"] == "response.done"]
    assert [r["status"] for r in done] == ["cancelled", "completed"]
    assert done[0]["status_details"]["reason"] == "turn_detected"
    # the cut-off reply keeps what of it was spoken; unspoken, the two turns are read as one question
    assert llm.prompts[-1][-1]["content"].endswith("no wait, second question")
    assert llm.prompts[-1][1]["content"].startswith("first question")
    check_invariants(events)


def test_tts_audio_at_another_rate_is_resampled_to_24k() -> None:
    from console_service.agent_response import _Pcm

    one_second_16k = wav_file(bytes(32000), 16000)
    pcm = _Pcm()
    for start in range(0, len(one_second_16k), 1001):  # odd-sized pieces, the header split across two
        pcm.add(one_second_16k[start : start + 1001])
    pieces = -(-len(one_second_16k) // 1001)
    assert abs(len(pcm.ready) - 48000) <= 2 * pieces  # each piece is resampled alone: a sample's rounding each


def test_transcript_deltas_carry_what_two_partials_agree_on() -> None:
    from asr_service.realtime import _agreed

    assert _agreed("Please tell me a lot", "Please tell me a lot of things") == "Please tell me a lot"
    assert _agreed("Please tell me a lot", "Please tell me about it") == "Please tell me "
    assert _agreed("请介绍一", "请介绍一下长城") == "请介绍一"
