"""The whole suite as a user runs it: start_all.sh boots all four services under gunicorn, core.py drives a
Chinese/English voice round trip through them, stop_all.sh leaves nothing behind."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import core
from common.services import SERVICES, SUITE_ENV_PREFIXES
from harness.launch import REPO, free_port
from harness.speech import assert_speech, character_error_rate, parse_wav, word_error_rate

pytestmark = pytest.mark.slow


def _script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "scripts" / name)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[core.Core, dict[str, str], Path]]:
    run_dir = tmp_path_factory.mktemp("suite-run")
    ports = {name: free_port() for name in SERVICES}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(SUITE_ENV_PREFIXES)},
        "SUITE_RUN_DIR": str(run_dir),
        **{service.port_env: str(ports[name]) for name, service in SERVICES.items()},
    }
    started = _script("start_all.sh", env)
    clients = inspect.signature(core.Core).parameters  # the console has no client: it is a page
    urls = {f"{name}_url": f"http://127.0.0.1:{port}" for name, port in ports.items() if f"{name}_url" in clients}
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        with core.Core(**urls) as client:
            yield client, env, run_dir
    finally:
        pids = [int(p.read_text()) for p in run_dir.glob("*.pid")]
        stopped = _script("stop_all.sh", env)
        assert stopped.returncode == 0, stopped.stderr
        assert not list(run_dir.glob("*.pid"))
        assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a service outlived stop_all.sh"


def test_scripts_report_and_do_not_start_twice(suite) -> None:
    _, env, run_dir = suite
    pids = {p.name: p.read_text() for p in run_dir.glob("*.pid")}
    assert set(pids) == {f"{name}.pid" for name in SERVICES}
    again = _script("start_all.sh", env)
    assert again.returncode == 0 and again.stdout.count("already running") == len(SERVICES)
    assert {p.name: p.read_text() for p in run_dir.glob("*.pid")} == pids
    status = _script("status.sh", env)
    assert status.returncode == 0
    for name in SERVICES:
        assert re.search(rf"^{name}\s+ready\s+pid=\d+\s+port=\d+\s+rss=\d+ MiB", status.stdout, re.M), status.stdout


def test_english_speech_round_trip(suite) -> None:
    client = suite[0]
    sentence = "Please send the quarterly report to my office before Friday afternoon."
    wav = client.tts.synthesize(sentence)
    heard = client.asr.transcribe(wav, language="en")
    assert word_error_rate(sentence, heard) <= 0.15, heard


def test_chinese_speech_round_trip(suite) -> None:
    client = suite[0]
    sentence = "今天天气很好，我们一起去公园散步吧。人工智能正在改变我们的生活方式。"
    heard = client.asr.transcribe(client.tts.synthesize(sentence, style="style2"), language="zh")
    assert character_error_rate(sentence, heard) <= 0.30, heard


def test_chat_in_both_languages(suite) -> None:
    client = suite[0]
    english = client.llm.chat("What is two plus two? Answer with a number.", max_tokens=16, temperature=0)
    assert "4" in english or "four" in english.lower()
    chinese = client.llm.chat("用一句话介绍北京。", max_tokens=48, temperature=0)
    assert re.search(r"[\u4e00-\u9fff]", chinese), chinese


def test_voice_chat_answers_a_spoken_question(suite) -> None:
    client = suite[0]
    question = client.tts.synthesize("What is the capital of France, and what is it famous for?", style="style3")
    system = "You are a helpful voice assistant. Answer in three or four sentences."
    reply = client.voice_chat(question, system=system, max_tokens=96, temperature=0)
    assert "capital" in reply.heard.lower() and "france" in reply.heard.lower()
    assert reply.reply and "paris" in reply.reply.lower()
    assert_speech(*parse_wav(reply.audio), (2.0, 60.0))
    assert len(reply.clauses) >= 2, reply.clauses
    assert reply.first_audio_s < reply.reply_s < reply.total_s  # spoke before the LLM had finished
    spoken_back = client.asr.transcribe(reply.audio, language="en")
    assert "paris" in spoken_back.lower()


def test_retrieval_is_sane(suite) -> None:
    client = suite[0]
    assert client.embedding.similarity("python programming", "learn python") > client.embedding.similarity(
        "python programming", "红烧肉的做法"
    )
    ranked = client.embedding.rerank("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办", "python flask"])
    assert ranked[0]["text"] == "忘记密码怎么办"


def test_metrics_counted_the_calls(suite) -> None:
    client = suite[0]
    expected = {"embedding": "/similarity", "asr": "/asr", "llm": "/api/chat", "tts": "/synthesize"}
    for name, route in expected.items():
        url = str(getattr(client, name)._http.base_url)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        counted = re.search(
            rf'http_requests_total\{{method="POST",route="{re.escape(route)}",service="{name}",status="200"\}} (\d+)',
            metrics,
        )
        assert counted and float(counted.group(1)) >= 1, (name, route)
