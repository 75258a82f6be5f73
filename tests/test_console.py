"""The voice console in a real browser (Debian's Chromium driven by Playwright) against the real services.

The page holds its conversation through the console's voice agent (``/v1/realtime``): the tests also read
the agent events the page sends and receives (``session.update``, ``conversation.item.truncate``...).
The fake microphone plays a spoken question (LibriVox-free: our own TTS speaks it) followed by silence,
looped. Screenshots of each state go to ``run/screenshots/`` (git-ignored). Waits are on the page's
data attributes (``body[data-state]``, the reply's ``data-played-seconds``...), never fixed sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import core
from common.audio import resample
from harness.browser import CHROMIUM, MODEL_SERVICES, browser, console_suite, mic_file
from harness.launch import REPO, SERVICES_PY, RunningService
from harness.speech import character_error_rate, librivox_clips, parse_wav, read_wav, word_error_rate

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO / "run" / "screenshots"
ENGLISH = "What is the capital of France, and what is it famous for?"
CHINESE = "法国的首都是哪里？它有什么有名的地方？"
STORY = "Please tell me a long story about a cat who travels around the world."
MIC_RATE = 48000
LEAD_S = 0.5  # mic_file's silence before the speech
STORY_TAIL_S = 20.0
WAIT_MS = 180_000  # generous: the machine's 2 cores may be shared


def query(testid: str) -> str:
    return f"document.querySelector('[data-testid={testid}]')"


def text_of(page: Any, testid: str) -> str:
    return page.evaluate(f"{query(testid)}.textContent").strip()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def suite(voice_suite: dict[str, RunningService]) -> dict[str, RunningService]:
    return voice_suite


@pytest.fixture(scope="module")
def questions(suite: dict[str, RunningService], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Microphone files: each question spoken by our TTS, then a long silence (the file loops)."""
    folder = tmp_path_factory.mktemp("mic")
    files = {}
    with core.Core(tts_url=suite["tts"].url) as client:
        for name, text, style, tail in (
            ("english", ENGLISH, None, 40.0),
            ("chinese", CHINESE, "style2", 40.0),
            ("story", STORY, None, STORY_TAIL_S),
        ):
            samples, rate = parse_wav(client.tts.synthesize(text, style=style))
            files[name] = mic_file(folder / f"{name}.wav", resample(samples, rate, MIC_RATE), MIC_RATE, tail_s=tail)
    return files


def open_console(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    return page


def ask_hands_free(page: Any, language: str = "") -> None:
    """Turn hands-free on and wait until the spoken question's partial, then its final, are shown."""
    page.select_option("[data-testid=language]", language)
    page.check("[data-testid=handsfree]")
    heard = f"{query('partial')}.textContent.trim() || {query('final')}.textContent.trim()"
    page.wait_for_function(heard, timeout=WAIT_MS)
    shot(page, f"listening-{language or 'auto'}")
    page.wait_for_function(f"{query('final')}.textContent.trim().length > 0", timeout=WAIT_MS)
    assert int(page.evaluate(f"{query('final')}.dataset.partialsBefore")) >= 1  # partial text came first


def check_spoken_answer(page: Any, name: str) -> None:
    """A reply appears, its audio plays, and the audio began before the reply's text was complete."""
    page.wait_for_function(f"{query('reply')}.textContent.trim().length > 0", timeout=WAIT_MS)
    if page.evaluate("document.body.dataset.state") == "thinking":
        shot(page, f"thinking-{name}")
    page.wait_for_function(f"Number({query('reply')}.dataset.playedSeconds) > 0.5", timeout=WAIT_MS)
    assert page.evaluate("document.body.dataset.state") == "speaking"
    shot(page, f"speaking-{name}")
    page.wait_for_function(f"{query('reply')}.dataset.done === 'true'", timeout=WAIT_MS)
    reply = page.evaluate(f"({{...{query('reply')}.dataset}})")
    assert float(reply["firstAudioAt"]) < float(reply["textDoneAt"]), reply  # spoken while still being written
    latency = page.evaluate(f"({{...{query('latency')}.dataset}})")
    assert {"finalMs", "tokenMs", "audioMs"} <= latency.keys(), latency
    assert 0 <= int(latency["finalMs"]) <= int(latency["tokenMs"]) <= int(latency["audioMs"]), latency
    page.wait_for_function("document.body.dataset.state === 'listening'", timeout=WAIT_MS)  # all played
    reply = page.evaluate(f"({{...{query('reply')}.dataset}})")
    assert float(reply["playedSeconds"]) > 1.0 and float(reply["playedSeconds"]) >= float(reply["queuedSeconds"]) - 0.1


def asked(page: Any) -> list[str]:
    """What the person said, turn by turn: the history's questions and the current one. A pause inside a
    question ends a turn; when some of the answer to the first part was heard, the agent keeps two turns."""
    turns = f"[...document.querySelectorAll('#history li.user'), {query('final')}]"
    return page.evaluate(f"{turns}.map((e) => e.textContent.trim())")


def agent_events(page: Any) -> dict[str, list[dict]]:
    """The voice agent events the page sends (``sent``) and receives (``received``) from now on, audio aside."""
    events: dict[str, list[dict]] = {"sent": [], "received": []}

    def record(kind: str, payload: str | bytes) -> None:
        event = json.loads(payload)
        if event.get("type") not in ("input_audio_buffer.append", "response.output_audio.delta"):
            events[kind].append(event)

    def watch(socket: Any) -> None:
        if socket.url.endswith("/v1/realtime"):
            socket.on("framesent", lambda payload: record("sent", payload))
            socket.on("framereceived", lambda payload: record("received", payload))

    page.on("websocket", watch)
    return events


def session_updates(events: dict[str, list[dict]]) -> list[dict]:
    return [event["session"] for event in events["sent"] if event["type"] == "session.update"]


def test_english_question_is_heard_answered_and_spoken(suite, questions, playwright) -> None:
    with browser(playwright, questions["english"]) as context:
        page = open_console(context, suite["console"].url)
        page.wait_for_function(f"{query('status')}.querySelectorAll('[data-state=ok]').length === 4")
        assert page.evaluate(f"{query('style')}.options.length") >= 3  # from /styles
        page.fill("[data-testid=system]", "You are a voice assistant. Answer in three to five sentences.")
        page.fill("[data-testid=temperature]", "0")
        events = agent_events(page)
        ask_hands_free(page)
        check_spoken_answer(page, "english")
        heard = " ".join(asked(page))  # read once answered: a pause may have made it two turns
        assert word_error_rate(ENGLISH, heard) <= 0.15, heard
        updates = session_updates(events)
        assert updates and all(update["temperature"] == 0 for update in updates), updates
        assert updates[-1]["audio"]["input"]["turn_detection"]["type"] == "server_vad", updates
        assert "three to five sentences" in updates[-1]["instructions"]
        kinds = [event["type"] for event in events["received"]]
        assert "response.done" in kinds and not [e for e in events["received"] if e["type"] == "error"], kinds


def test_chinese_question_is_heard_answered_and_spoken(suite, questions, playwright) -> None:
    with browser(playwright, questions["chinese"]) as context:
        page = open_console(context, suite["console"].url)
        page.click("[data-testid=ui-language]")  # the interface in Chinese
        assert text_of(page, "talk") == "按住说话"
        page.fill("[data-testid=system]", "你是语音助手。请用中文回答，三到五句话。")  # long enough to stream
        events = agent_events(page)
        ask_hands_free(page, "zh")
        check_spoken_answer(page, "chinese")
        heard = "".join(asked(page))  # a pause may have made it two turns
        assert character_error_rate(CHINESE, heard) <= 0.30, heard
        updates = session_updates(events)
        assert updates and all(update["temperature"] is None for update in updates), updates  # the model's default
        assert updates[-1]["audio"]["input"]["transcription"]["language"] == "zh", updates


def test_talking_while_it_speaks_stops_the_answer(suite, questions, playwright) -> None:
    asked_s = LEAD_S + len(read_wav(questions["story"])) / MIC_RATE - STORY_TAIL_S  # the question, from the press
    with browser(playwright, questions["story"]) as context:
        page = open_console(context, suite["console"].url)
        page.fill("[data-testid=system]", "Tell long, detailed stories of at least eight sentences.")
        page.select_option("[data-testid=language]", "en")
        events = agent_events(page)
        page.hover("[data-testid=talk]")
        page.mouse.down()  # hold to talk until the whole question was sent (the fake microphone starts with it)
        page.wait_for_function(f"{query('partial')}.textContent.trim().length > 0", timeout=WAIT_MS)
        page.wait_for_function(f"Number({query('talk')}.dataset.heldSeconds) > {asked_s + 0.3}", timeout=WAIT_MS)
        page.mouse.up()
        page.wait_for_function(f"Number({query('reply')}.dataset.playedSeconds) > 0.5", timeout=WAIT_MS)
        page.mouse.down()  # talking again while the story is told: a barge-in
        page.wait_for_function("document.body.dataset.bargeIns === '1'", timeout=WAIT_MS)
        barge = json.loads(page.evaluate("document.body.dataset.lastBargeIn"))
        page.wait_for_function("document.body.dataset.state === 'listening'", timeout=WAIT_MS)
        shot(page, "barge-in")
        assert barge["state"] == "speaking" and barge["wasPlaying"] and not barge["playingAfter"], barge
        assert 0 < barge["played"] < barge["queued"], barge  # cut short
        assert page.evaluate(f"{query('reply')}.dataset.interrupted") == "speaking"
        page.wait_for_function(f"{query('reply')}.dataset.audioPlaying === 'false'", timeout=WAIT_MS)
        page.mouse.up()
        page.wait_for_function(f"{query('reply')}.dataset.kept !== undefined", timeout=WAIT_MS)
        received = lambda kind: [e for e in events["received"] if e["type"] == kind]  # noqa: E731
        sent = {event["type"]: event for event in events["sent"]}
        assert [update["audio"]["input"]["turn_detection"] for update in session_updates(events)][-1] is None
        assert {"input_audio_buffer.commit", "response.create"} <= sent.keys(), sent.keys()
        truncate = sent["conversation.item.truncate"]  # what was heard: the agent keeps only that
        assert abs(truncate["audio_end_ms"] - barge["played"] * 1000) <= 1, (truncate, barge)
        assert [done["response"]["status"] for done in received("response.done")] == ["cancelled"]
        kept = received("conversation.item.retrieved")[-1]["item"]
        said = " ".join(text_of(page, "reply").split())
        assert kept["status"] == "incomplete" and said.startswith(" ".join(kept["content"][0]["transcript"].split()))
        assert page.evaluate(f"{query('reply')}.dataset.kept") == kept["content"][0]["transcript"]


def test_rerank_panel_ranks_the_relevant_passage_first(suite, playwright) -> None:
    candidates = ["这家餐厅的菜很好吃", "Paris is the capital of France.", "忘记密码怎么办？点击登录页的“重置密码”。"]
    with browser(playwright) as context:
        page = open_console(context, suite["console"].url)
        page.fill("[data-testid=rerank-query]", "如何重置我的密码")
        page.fill("[data-testid=rerank-candidates]", "\n".join(candidates))
        shot(page, "idle")
        page.focus("[data-testid=rerank-query]")
        page.keyboard.press("Enter")  # submits from the query field: usable from the keyboard
        page.wait_for_function(f"{query('rerank-results')}.children.length === 3", timeout=WAIT_MS)
        ranked = page.evaluate(
            f"[...{query('rerank-results')}.children].map((li) => [+li.dataset.index, +li.dataset.score])"
        )
        shot(page, "rerank")
    assert ranked[0][0] == 2, ranked
    assert ranked[0][1] > ranked[1][1] >= ranked[2][1], ranked


KEY = "console-s3cret"


@pytest.fixture(scope="module")
def keyed_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    """The services on their fake backends (no weights: this is about the key), each requiring an API key."""
    env = {f"{name.upper()}__SERVER__API_KEY": KEY for name in (*MODEL_SERVICES, "console")}
    env.update(ASR__BACKEND="fake", LLM__BACKEND="fake", TTS__BACKEND="fake", EMBEDDING__DEFAULT_MODEL="fake-model")
    env["EMBEDDING__MODELS"] = json.dumps({"fake-model": {"backend": "fake"}})
    with console_suite(tmp_path_factory.mktemp("console-keyed-run"), env) as running:
        yield running


def talk(page: Any, down: Any, up: Any) -> None:
    """Hold to talk (``down``/``up``: the button or the space bar) until words are heard; a spoken reply follows."""
    down()
    page.wait_for_function(f"{query('partial')}.textContent.trim().length > 0", timeout=WAIT_MS)
    assert page.evaluate("document.body.dataset.state") == "listening"
    up()
    page.wait_for_function(f"{query('final')}.textContent.trim().length > 0", timeout=WAIT_MS)
    page.wait_for_function(f"Number({query('reply')}.dataset.playedSeconds) > 0.2", timeout=WAIT_MS)
    assert not text_of(page, "error")


def test_api_key_mode_asks_once_and_works_everywhere(keyed_suite, playwright, tmp_path: Path) -> None:
    clip = librivox_clips()[0][0]
    with browser(playwright, mic_file(tmp_path / "mic.wav", read_wav(clip), 16000, tail_s=20)) as context:
        page = context.new_page()
        page.goto(f"{keyed_suite['console'].url}/")
        page.wait_for_selector("#key-dialog[open]", timeout=WAIT_MS)  # /styles answered 401: the page asks
        shot(page, "api-key")
        page.fill("[data-testid=api-key]", KEY)
        page.keyboard.press("Enter")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
        assert page.evaluate("sessionStorage.getItem('suite-api-key')") == KEY
        assert page.evaluate(f"{query('style')}.options.length") >= 2
        page.hover("[data-testid=talk]")
        talk(page, page.mouse.down, page.mouse.up)
        page.reload()  # the key is kept for the tab: no second question
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
        assert not page.evaluate("document.getElementById('key-dialog').open")
        page.fill("[data-testid=rerank-query]", "three")
        page.fill("[data-testid=rerank-candidates]", "one\nthree")
        page.click("[data-testid=rerank-query]")
        page.keyboard.press("Enter")
        page.wait_for_function(f"{query('rerank-results')}.children.length === 2", timeout=WAIT_MS)
        page.focus("[data-testid=talk]")
        talk(page, lambda: page.keyboard.down("Space"), lambda: page.keyboard.up("Space"))


def test_going_on_after_a_pause_cuts_the_answer_where_it_was_heard(suite, playwright, tmp_path: Path) -> None:
    first, second = "I am planning a trip to Europe next month.", "What is the capital of France?"
    with core.Core(tts_url=suite["tts"].url) as client:
        parts = [parse_wav(client.tts.synthesize(text)) for text in (first, second)]
    rate = parts[0][1]
    pause = np.zeros(int(0.8 * rate), dtype=np.float32)  # longer than live.end_silence_s: two turns
    spoken = np.concatenate([parts[0][0], pause, parts[1][0]])
    mic = mic_file(tmp_path / "continued.wav", resample(spoken, rate, MIC_RATE), MIC_RATE, tail_s=40.0)
    with browser(playwright, mic) as context:
        page = open_console(context, suite["console"].url)
        page.fill("[data-testid=system]", "You are a voice assistant. Answer in one or two sentences.")
        page.select_option("[data-testid=language]", "en")
        events = agent_events(page)
        page.check("[data-testid=handsfree]")
        # the first sentence's answer starts, the second sentence cuts it off (the agent's voice activity
        # detection), and the second is answered
        answered = f"/capital/i.test({query('final')}.textContent) && {query('reply')}.dataset.done === 'true'"
        page.wait_for_function(answered, timeout=WAIT_MS)
        shot(page, "continued")
        heard, reply = text_of(page, "final"), text_of(page, "reply")
        history = page.evaluate("[...document.getElementById('history').children].map((li) => li.textContent)")
        assert "paris" in reply.lower()
        assert page.evaluate("document.body.dataset.bargeIns") == "1"
        retrieved = [e["item"] for e in events["received"] if e["type"] == "conversation.item.retrieved"]
        kept = [item["content"][0]["transcript"] for item in retrieved]
        if page.evaluate(f"{query('final')}.dataset.continued") == "1":  # cut before a word of it was heard
            assert word_error_rate(f"{first} {second}", heard) <= 0.15, heard
            assert history == [] and kept in ([], [""]), (history, kept)
        else:  # a few words were heard: the agent keeps them, the page shows two turns
            assert word_error_rate(second, heard) <= 0.15, heard
            assert len(history) == 2 and word_error_rate(first, history[0]) <= 0.15, history
            shown = " ".join(history[1].split())
            assert kept and kept[0] and shown.startswith(" ".join(kept[0].split())), (history, kept)


def test_with_the_llm_stopped_the_page_says_so_and_still_transcribes(suite, questions, playwright) -> None:
    llm = suite["llm"]
    services = lambda action: subprocess.run(  # noqa: E731
        [sys.executable, str(SERVICES_PY), "--wait", "300", action, "llm"],
        env=llm.env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    stopped = services("stop")
    assert stopped.returncode == 0, stopped.stderr
    try:
        llm_stopped(suite, questions, playwright)
    finally:
        started = services("start")  # the suite is shared with the session's other tests
        assert started.returncode == 0, started.stdout + started.stderr


def llm_stopped(suite, questions, playwright) -> None:
    """With the LLM down, the page says so (its URL) and still shows what was heard."""
    llm = suite["llm"]
    with browser(playwright, questions["english"]) as context:
        page = open_console(context, suite["console"].url)
        page.wait_for_function(f"{query('status')}.querySelector('[data-service=llm]').dataset.state === 'down'")
        assert page.evaluate(f"{query('status')}.querySelectorAll('[data-state=ok]').length") == 3
        ask_hands_free(page, "en")
        page.wait_for_function(f"{query('error')}.dataset.service === 'llm'", timeout=WAIT_MS)
        assert "LLM" in text_of(page, "error") and llm.url in text_of(page, "error")
        # with no answer to cut short, a pause inside the question (at its comma) makes two turns, the
        # second a moment after the first one's error: wait for the question's last word, read them all
        turns = f"[...document.querySelectorAll('#history li.user'), {query('final')}].map((e) => e.textContent)"
        page.wait_for_function(f"{turns}.join(' ').toLowerCase().includes('famous')", timeout=WAIT_MS)
        page.wait_for_function("document.body.dataset.state === 'listening'", timeout=WAIT_MS)
        heard = asked(page)
        assert word_error_rate(ENGLISH, " ".join(heard)) <= 0.15, heard
        assert "LLM" in text_of(page, "error")  # the last turn's error is shown too
        shot(page, "llm-down")
