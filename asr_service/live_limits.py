"""``live:`` settings of the ASR service: bounds and timing of live sessions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LiveLimits(BaseModel):
    """``live:`` group of the ASR config: bounds and timing of live sessions."""

    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(default=4, ge=0, le=64)
    """Live sessions at once; more are refused with close code 1013 (try again later)."""
    max_session_s: float = Field(default=3600.0, gt=0)
    """Seconds of audio one session may send."""
    max_utterance_s: float = Field(default=20.0, ge=1, le=30)
    """An utterance this long is finalised even without a pause (Whisper hears 30 s at most)."""
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest binary frame; bigger ones end the session with close code 1009."""
    drain_s: float = Field(default=10.0, ge=0, le=60)
    """On shutdown, how long a session still speaking may go on before its utterance is committed (keep it,
    plus a final's decode, under the server's ``graceful_timeout``)."""
    idle_timeout_s: float = Field(default=30.0, gt=0)
    """A session that sends nothing for this long is closed."""
    end_silence_s: float = Field(default=0.5, ge=0.1, le=5)
    """A pause this long ends an utterance."""
    sentence_end_silence_s: float = Field(default=0.4, ge=0.1, le=5)
    """A pause this long already ends an utterance whose decoded text ends a sentence (``.?!。？！``). Not much
    shorter: Whisper may end a clause with a period, and our own TTS pauses 0.38 s at a comma."""
    partial_interval_s: float = Field(default=0.5, ge=0.1)
    """New audio needed before another partial decode of the same utterance."""
    min_speech_s: float = Field(default=0.25, ge=0)
    """Utterances with less speech than this are dropped as noise."""
    speech_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Silero speech probability above which a 32 ms window counts as speech."""
    fast_finals: bool = True
    """Finals take the backend's fast path for short utterances too (Whisper: a shorter window);
    off, they are decoded as the file routes decode them (slower, the same text as ``/asr``)."""
    pad_before_s: float = Field(default=0.5, ge=0, le=1)
    """Audio kept before the first speech window of an utterance (less cuts Whisper's first word)."""
    pad_after_s: float = Field(default=0.1, ge=0, le=1)
    """Audio kept after the last speech window; the final is decoded once this much pause is heard."""
    stable_prefix_s: float = Field(default=2.0, ge=0)
    """A decode made at a pause inside an utterance, of at least this much new audio, is kept as the
    utterance's beginning: later decodes (the final too) only decode the audio after it. 0: off."""

    def samples(self, seconds: float) -> int:
        """``seconds`` at 16 kHz."""
        return int(seconds * 16000)
