"""core.py's clients against the real apps in process (httpx.WSGITransport) and a few plumbing cases."""

from __future__ import annotations

import httpx
import pytest

import core
from asr_service.app import create_app as create_asr_app
from embedding_service.app import create_app as create_embedding_app
from harness.launch import free_port
from harness.speech import assert_speech, librivox_clips, long_speech, parse_wav, wav_bytes, word_error_rate
from llm_service.app import create_app as create_llm_app
from tts_service.app import create_app as create_tts_app


@pytest.fixture
def embedding(embedding_settings, embedding_engine) -> core.EmbeddingClient:
    app = create_embedding_app(embedding_settings, engine=embedding_engine)
    return core.EmbeddingClient("http://embedding", transport=httpx.WSGITransport(app=app))


@pytest.fixture
def asr(asr_settings, asr_engine) -> core.ASRClient:
    return core.ASRClient(
        "http://asr", transport=httpx.WSGITransport(app=create_asr_app(asr_settings, engine=asr_engine))
    )


@pytest.fixture
def llm(llm_settings, llm_engine) -> core.LLMClient:
    return core.LLMClient(
        "http://llm", transport=httpx.WSGITransport(app=create_llm_app(llm_settings, engine=llm_engine))
    )


@pytest.fixture
def tts(tts_settings, tts_engine) -> core.TTSClient:
    return core.TTSClient(
        "http://tts", transport=httpx.WSGITransport(app=create_tts_app(tts_settings, engine=tts_engine))
    )


def test_embedding_client(embedding: core.EmbeddingClient) -> None:
    assert len(embedding.embed("hello world")) == 384
    assert [len(v) for v in embedding.embed(["a", "b"], model="all-MiniLM-L6-v2")] == [384, 384]
    assert embedding.similarity("python programming", "learn python") > embedding.similarity("python", "红烧肉")
    ranked = embedding.rerank("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办"])
    assert ranked[0]["text"] == "忘记密码怎么办"
    assert embedding.health()["status"] == "ok"


def test_asr_client(asr: core.ASRClient) -> None:
    path, reference = librivox_clips()[1]
    assert word_error_rate(reference, asr.transcribe(path)) <= 0.1
    assert asr.transcribe(path.read_bytes(), language="en")
    partials = list(asr.transcribe_stream(wav_bytes(long_speech()[0])))
    assert len(partials) >= 2 and partials[-1].startswith(partials[0])


def test_llm_client(llm: core.LLMClient) -> None:
    whole = llm.chat("Name a color.", system="Answer in one word.", max_tokens=8, temperature=0, seed=1)
    pieces = list(llm.chat_stream("Name a color.", system="Answer in one word.", max_tokens=8, temperature=0, seed=1))
    assert whole and "".join(pieces) == whole


def test_errors_are_typed(embedding: core.EmbeddingClient, llm: core.LLMClient) -> None:
    with pytest.raises(core.InvalidRequestError) as bad:
        embedding.embed(["ok", ""])
    assert bad.value.status == 400 and bad.value.request_id and "texts" in bad.value.message
    with pytest.raises(core.NotFoundError, match="available"):
        embedding.embed("x", model="nope")
    with pytest.raises(core.InvalidRequestError):
        list(llm.chat_stream([], max_tokens=4))
    with pytest.raises(core.ServiceUnavailableError, match="cannot reach"):
        core.LLMClient(f"http://127.0.0.1:{free_port()}", retries=0).chat("hi")


def test_429_is_retried_after_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"message": "full"}}),
            httpx.Response(200, json={"score": 0.5}),
        ]
    )
    client = core.EmbeddingClient("http://x", transport=httpx.MockTransport(lambda request: next(answers)))
    assert client.similarity("a", "b") == 0.5
    always_full = core.EmbeddingClient(
        "http://x",
        retries=1,
        transport=httpx.MockTransport(
            lambda request: httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"message": "full"}})
        ),
    )
    with pytest.raises(core.RateLimitError, match="full"):
        always_full.similarity("a", "b")


def test_streams_retry_429_and_503_before_the_first_byte() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"message": "loading"}}),
            httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"message": "full"}}),
            httpx.Response(200, content=b'{"delta": "hi"}\n{"event": "done"}\n'),
        ]
    )
    client = core.LLMClient("http://x", transport=httpx.MockTransport(lambda request: next(answers)))
    assert list(client.chat_stream("hello")) == ["hi"]
    midway = httpx.Response(200, content=b'{"delta": "a"}\n{"event": "error", "message": "boom", "code": "x"}\n')
    client = core.LLMClient("http://x", transport=httpx.MockTransport(lambda request: midway))
    with pytest.raises(core.StreamError, match="boom"):
        list(client.chat_stream("hello"))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, core.InvalidRequestError),
        (401, core.AuthenticationError),
        (404, core.NotFoundError),
        (413, core.InvalidRequestError),
        (429, core.RateLimitError),
        (500, core.ServerError),
        (502, core.UpstreamFailureError),
        (503, core.ServiceUnavailableError),
        (504, core.UpstreamFailureError),
    ],
)
def test_each_status_has_its_own_error(status: int, error: type[core.SuiteError]) -> None:
    answer = httpx.Response(status, headers={"Retry-After": "0"}, json={"error": {"message": "no", "code": "c"}})
    client = core.EmbeddingClient("http://x", retries=0, transport=httpx.MockTransport(lambda request: answer))
    with pytest.raises(error) as raised:
        client.similarity("a", "b")
    assert type(raised.value) is error and raised.value.status == status and raised.value.code == "c"


def test_tts_client(tts: core.TTSClient, tmp_path) -> None:
    wav = tts.synthesize("你好，这是默认风格的测试", style="style2", save_to=tmp_path / "out.wav")
    assert (tmp_path / "out.wav").read_bytes() == wav
    assert_speech(*parse_wav(wav), (1.5, 4.5))
    reference = librivox_clips()[1][0]
    assert_speech(
        *parse_wav(tts.synthesize("Hello there.", prompt_audio=reference, temperature=0.6, top_p=0.9)), (0.5, 3)
    )
    chunks = list(tts.synthesize_stream("第一句。第二句。"))
    streamed = b"".join(chunks)
    assert streamed[:4] == b"RIFF" and len(streamed) > 44 + 24000
    assert tts.styles()["default"] == "style1"
    with pytest.raises(core.InvalidRequestError, match="unknown style") as bad:
        tts.synthesize("hi", style="style9")
    assert bad.value.request_id
    with pytest.raises(core.InvalidRequestError, match="empty"):
        list(tts.synthesize_stream("  "))


@pytest.mark.parametrize(
    ("streamed", "final", "clauses", "rest"),
    [
        ("你好，我是一个助手。我可以帮你", False, ["你好，我是一个助手。"], "我可以帮你"),
        ("Hello, I am a helpful assistant. I can", False, ["Hello,", "I am a helpful assistant."], " I can"),
        ("It costs 1,000 dollars, at 10:30 sharp. Ok", False, ["It costs 1,000 dollars,", "at 10:30 sharp."], " Ok"),
        ("It costs 1,", False, [], "It costs 1,"),
        ("价格是3.5元，很便宜", True, ["价格是3.5元，", "很便宜"], ""),
        ("好！真的吗？", False, ["好！", "真的吗？"], ""),
    ],
)
def test_streamed_reply_is_cut_into_clauses(streamed: str, final: bool, clauses: list[str], rest: str) -> None:
    assert core.split_ready_clauses(streamed, final=final) == (clauses, rest)


def test_voice_chat_in_process(asr, llm, tts) -> None:
    question = tts.synthesize("What is the capital of France?")
    suite = core.Core()
    suite.asr, suite.llm, suite.tts = asr, llm, tts
    events = list(suite.voice_chat_stream(question, system="Answer in two short sentences.", max_tokens=48, seed=1))
    assert events[0].kind == "heard" and "capital" in events[0].text.lower()
    audio = [e for e in events if e.kind == "audio"]
    assert audio and all(e.audio[:4] == b"RIFF" for e in audio)
    reply = suite.voice_chat(question, system="Answer in two short sentences.", max_tokens=48, seed=1)
    assert reply.reply and "".join(reply.clauses).replace(" ", "") == reply.reply.replace(" ", "")
    assert_speech(*parse_wav(reply.audio), (0.5, 30))
    assert 0 < reply.first_audio_s <= reply.total_s and reply.reply_s <= reply.total_s
