"""Audio decoding: every common container, any rate and channel count, and every kind of bad upload."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from common.audio import AudioError, decode_audio
from harness.speech import encode, librivox_clips, read_wav, wav_bytes

SPEECH = read_wav(librivox_clips()[1][0])  # 3 s


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [
        ("wav", "pcm_s16le", 8000),
        ("mp3", "libmp3lame", 16000),
        ("ogg", "libopus", 48000),
        ("flac", "flac", 44100),
        ("ipod", "aac", 22050),
        ("webm", "libopus", 48000),
    ],
)
def test_formats_decode_to_16k_mono(container: str, codec: str, rate: int) -> None:
    audio = decode_audio(encode(SPEECH, container, codec, rate=rate))
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - len(SPEECH) / 16000) < 0.15
    assert np.abs(audio.samples).max() > 0.05


def test_stereo_is_mixed_down() -> None:
    stereo = np.stack([SPEECH, SPEECH * 0.5], axis=1)
    audio = decode_audio(wav_bytes(stereo, channels=2))
    assert audio.samples.ndim == 1 and abs(audio.duration - len(SPEECH) / 16000) < 0.01


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_audio"),
        (b"this is a text file, not audio\n" * 10, "invalid_audio"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "invalid_audio"),
        (wav_bytes(np.zeros(0)), "empty_audio"),
    ],
)
def test_bad_uploads(data: bytes, code: str) -> None:
    with pytest.raises(AudioError) as info:
        decode_audio(data)
    assert info.value.code == code and info.value.status == 400 and info.value.param == "file"


def test_unknown_wav_format_tag() -> None:
    data = bytearray(wav_bytes(SPEECH))
    data[20:22] = struct.pack("<H", 0x1234)
    with pytest.raises(AudioError):
        decode_audio(bytes(data))


def test_zip_archive_is_not_audio() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.wav", bytes(10_000_000))
    with pytest.raises(AudioError):
        decode_audio(buffer.getvalue())


def test_long_audio_is_refused_while_decoding() -> None:
    # 20 minutes of silence in FLAC is a few hundred KB: the limit must stop it, not memory
    silence = encode(np.zeros(16000 * 1200, dtype=np.float32), "flac", "flac")
    assert len(silence) < 2_000_000
    with pytest.raises(AudioError, match="limit is 900 s") as info:
        decode_audio(silence, max_seconds=900)
    assert info.value.code == "audio_too_long"


def test_truncated_file_keeps_what_decoded() -> None:
    mp3 = encode(SPEECH, "mp3", "libmp3lame")
    audio = decode_audio(mp3[: len(mp3) // 2])
    assert 0.5 < audio.duration < len(SPEECH) / 16000
