"""ASR routes in process (Flask test client around the shared Whisper base engine)."""

from __future__ import annotations

import io
import itertools
import json
import tempfile
from pathlib import Path

import pytest

from asr_service.backends.sensevoice import SenseVoiceBackend, parse_rich_text
from asr_service.settings import AsrSettings
from common.bundled import assemble
from common.settings import ConfigError
from harness.speech import encode, librivox_clips, long_speech, read_wav, wav_bytes, word_error_rate

CLIPS = librivox_clips()


def _post(client, path: str, audio: bytes, name: str = "speech.wav", **fields):
    return client.post(path, data={"file": (io.BytesIO(audio), name), **fields}, content_type="multipart/form-data")


@pytest.fixture
def fake_client(fake_app):
    """The asr routes on the fake backend: no weights, for route and error tests."""
    return fake_app("asr").test_client()


@pytest.fixture(scope="module")
def long_wav() -> tuple[bytes, str]:
    samples, reference = long_speech()
    return wav_bytes(samples), reference


def test_librivox_word_error_rate(asr_client) -> None:
    references, hypotheses = [], []
    for path, reference in CLIPS:
        response = _post(asr_client, "/asr", path.read_bytes())
        assert response.status_code == 200, response.json
        body = response.json
        assert body["language"] == "en" and body["model"] == "whisper-base"
        assert body["segments"] and body["duration"] > 2
        references.append(reference)
        hypotheses.append(body["text"])
    wer = word_error_rate(" ".join(references), " ".join(hypotheses))
    assert wer <= 0.10, (wer, hypotheses)


def test_seed_shape(asr_client) -> None:
    body = _post(asr_client, "/asr", CLIPS[1][0].read_bytes()).json
    assert isinstance(body["text"], str) and body["text"]
    assert set(body) >= {"text", "language", "duration", "segments"}


def test_stream_sends_growing_partials_then_the_full_text(asr_client, long_wav) -> None:
    audio, _ = long_wav
    response = _post(asr_client, "/asr/stream", audio)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    partials = [line["partial_text"] for line in lines if "partial_text" in line]
    assert len(partials) >= 2
    for before, after in itertools.pairwise(partials):
        assert after.startswith(before) and len(after) > len(before)
    assert lines[-1]["event"] == "done"
    assert lines[-1]["text"] == partials[-1]
    assert lines[-1]["text"] == _post(asr_client, "/asr", audio).json["text"]


@pytest.mark.parametrize(
    ("container", "codec", "rate", "layout"),
    [
        ("mp3", "libmp3lame", 16000, "mono"),
        ("ogg", "libopus", 48000, "stereo"),
        ("flac", "flac", 8000, "mono"),
        ("ipod", "aac", 44100, "stereo"),
        ("webm", "libopus", 48000, "mono"),
    ],
)
def test_other_formats_transcribe(asr_client, container: str, codec: str, rate: int, layout: str) -> None:
    path, reference = CLIPS[1]
    audio = encode(read_wav(path), container, codec, rate=rate, layout=layout)
    response = _post(asr_client, "/asr", audio, name=f"speech.{container}")
    assert response.status_code == 200, response.json
    assert word_error_rate(reference, response.json["text"]) <= 0.25


@pytest.mark.parametrize(
    ("audio", "code"),
    [(b"", "empty_audio"), (b"just text, named .wav\n" * 20, "invalid_audio"), (wav_bytes([]), "empty_audio")],
)
def test_bad_audio_is_400(fake_client, audio: bytes, code: str) -> None:
    for path in ("/asr", "/asr/stream", "/v1/audio/transcriptions"):
        response = _post(fake_client, path, audio, **({"model": "whisper-1"} if path.startswith("/v1") else {}))
        assert response.status_code == 400, (path, response.json)
        assert response.json["error"]["code"] == code
        assert response.json["error"]["param"] == "file"


def test_missing_file_and_wrong_body(fake_client) -> None:
    no_file = fake_client.post("/asr", data={"language": "en"}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and no_file.json["error"]["param"] == "file"
    as_json = fake_client.post("/asr", json={"file": "speech.wav"})
    assert as_json.status_code == 400 and as_json.json["error"]["code"] == "missing_file"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"language": "english!"}, "language"),
        ({"language": "xx"}, "language"),
        ({"temperature": "2"}, "temperature"),
        ({"response_format": "docx"}, "response_format"),
        ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities"),
    ],
)
def test_bad_options_name_the_field(fake_client, fields: dict, param: str) -> None:
    response = _post(fake_client, "/v1/audio/transcriptions", CLIPS[1][0].read_bytes(), **fields)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"].startswith(param)


def test_unknown_model_is_404(fake_client) -> None:
    response = _post(fake_client, "/v1/audio/transcriptions", CLIPS[1][0].read_bytes(), model="gpt-4o-transcribe")
    assert response.status_code == 404
    assert "whisper-1" in response.json["error"]["message"]


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_openai_response_formats(asr_client, response_format: str) -> None:
    fields = {"model": "whisper-1", "response_format": response_format}
    if response_format == "verbose_json":
        fields["timestamp_granularities[]"] = ["word", "segment"]
    response = _post(asr_client, "/v1/audio/transcriptions", CLIPS[1][0].read_bytes(), **fields)
    assert response.status_code == 200, response.data
    text = response.get_data(as_text=True)
    assert "young man" in text.lower()
    if response_format == "srt":
        assert text.startswith("1\n00:00:00,000 --> 00:00:0")
    elif response_format == "vtt":
        assert text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    elif response_format == "verbose_json":
        body = response.json
        assert body["language"] == "en" and body["duration"] > 2
        assert body["segments"][0]["end"] > body["segments"][0]["start"]
        assert [w["word"] for w in body["words"]][:3] == ["He", "was", "not"]


def test_openai_sse_stream(asr_client, long_wav) -> None:
    audio, _ = long_wav
    response = _post(asr_client, "/v1/audio/transcriptions", audio, model="whisper-1", stream="true")
    assert response.mimetype == "text/event-stream"
    events = [json.loads(line[6:]) for line in response.get_data(as_text=True).split("\n\n") if line]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    assert len(deltas) >= 2
    assert events[-1]["type"] == "transcript.text.done"
    assert events[-1]["text"] == "".join(deltas).strip()


def test_language_and_prompt_are_used(asr_client) -> None:
    path, _ = CLIPS[1]
    forced = _post(asr_client, "/asr", path.read_bytes(), language="en", prompt="Dashwood, Sense and Sensibility").json
    assert forced["language"] == "en" and "man" in forced["text"]
    auto = _post(asr_client, "/asr", path.read_bytes(), language="auto", hotwords="disposed").json
    assert auto["language"] == "en"


def test_silence_gives_empty_text_quickly(asr_client) -> None:
    response = _post(asr_client, "/asr", wav_bytes([0.0] * 16000 * 60))
    assert response.status_code == 200 and response.json["text"] == ""


def test_no_temp_files_are_left(fake_client) -> None:
    before = set(Path(tempfile.gettempdir()).iterdir())
    _post(fake_client, "/asr", CLIPS[1][0].read_bytes() * 3)  # > 500 KB: werkzeug would spool it to disk
    _post(fake_client, "/asr", b"garbage" * 100_000)
    assert set(Path(tempfile.gettempdir()).iterdir()) - before == set()


def test_sensevoice_tags_become_fields() -> None:
    parts = parse_rich_text("<|zh|><|NEUTRAL|><|Speech|><|withitn|>你好。<|en|><|HAPPY|><|BGM|><|woitn|>hi")
    assert parts == [
        {"text": "你好。", "language": "zh", "emotion": "NEUTRAL", "event": "Speech"},
        {"text": "hi", "language": "en", "emotion": "HAPPY", "event": "BGM"},
    ]
    assert parse_rich_text("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|>") == []


def test_sensevoice_missing_model_dir_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SenseVoiceBackend({"model_dir": str(tmp_path / "SenseVoiceSmall")}, cpu_threads=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no \*\.pt or \*\.onnx"):
        SenseVoiceBackend({"model_dir": str(tmp_path / "empty")}, cpu_threads=1)


def test_production_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_MODEL_DIR", "/srv/SenseVoiceSmall")
    settings = AsrSettings.load(Path("configs/production/asr.yaml"))
    assert settings.backend == "sensevoice" and settings.options["model_dir"] == "/srv/SenseVoiceSmall"
    monkeypatch.setenv("ASR__BACKEND", "nemo")
    with pytest.raises(ConfigError, match="unknown backend"):
        AsrSettings.load()


def test_assemble_checks_the_checksum(tmp_path: Path) -> None:
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"hello ")
    parts[1].write_bytes(b"world")
    good = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    target = assemble(parts, tmp_path / "out.bin", good)
    assert target.read_bytes() == b"hello world"
    parts[1].write_bytes(b"WORLD")
    assert assemble(parts, tmp_path / "out.bin", good).read_bytes() == b"hello world"  # cached, not redone
    with pytest.raises(ValueError, match="sha256"):
        assemble(parts, tmp_path / "other.bin", good)
    assert not any(p.name.startswith("other.bin") for p in tmp_path.iterdir())


def test_whisper_chinese_is_converted_to_simplified() -> None:
    from types import SimpleNamespace

    from opencc import OpenCC

    from asr_service.backends.whisper import WhisperBackend

    raw = SimpleNamespace(
        text="這是測試，請說話。",
        words=None,
        seek=0,
        tokens=[1],
        temperature=0.0,
        avg_logprob=-0.1,
        compression_ratio=1.0,
        no_speech_prob=0.0,
        start=0.0,
        end=1.5,
    )
    [segment] = list(WhisperBackend._segments(iter([raw]), OpenCC("t2s")))
    assert segment.text == "这是测试，请说话。"
    [kept] = list(WhisperBackend._segments(iter([raw]), None))
    assert kept.text == raw.text
