"""What the live ASR benchmark streams: LibriVox clips and our TTS's sentences, each utterance after a pause.

Speech start and end of every utterance are known from the audio (Silero VAD on each clip alone, as the
service runs it), so latencies can be measured from when speech really started or stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.speech import librivox_clips, pcm16, read_wav

RATE = 16000
FRAME = RATE // 10
PAUSE_S = 1.5
ENGLISH = [
    "The weather is lovely today, so let's take a walk in the park.",
    "Please send me the report before Friday afternoon.",
    "Artificial intelligence is changing the way we live and work.",
    "Could you turn off the lights in the kitchen when you leave?",
    "The train to the city leaves from the second platform.",
    "I would like a cup of coffee with a little milk and no sugar.",
    "Remember to water the plants while I am away on holiday.",
    "The meeting has been moved to the large room on the third floor.",
    "She opened the window and listened to the birds singing outside.",
    "How long does it take to drive from here to the airport?",
    "Our team finished the project a few weeks ahead of schedule.",
    "The library closes early on Sundays, so plan your visit carefully.",
    "He forgot his umbrella and came home completely soaked.",
    "Can you recommend a good restaurant near the river?",
    "The children built a small castle out of sand and shells.",
    "Turn left at the bakery and the museum is straight ahead.",
]
CHINESE = [
    "今天天气很好，我们一起去公园散步吧。",
    "人工智能正在改变我们的生活方式。",
    "请在星期五下午之前把报告发给我。",
    "明天早上我们在学校门口见面。",
    "这家餐厅的菜很好吃，价格也不贵。",
    "请帮我把窗户关上，外面太冷了。",
    "我想买一张去北京的火车票。",
    "会议改到下个星期举行。",
    "他每天晚上都会读半个小时的书。",
    "图书馆周末开放的时间比较短。",
    "你能告诉我去火车站怎么走吗？",
    "这个问题我们需要再讨论一下。",
    "孩子们在海边用沙子堆了一座城堡。",
    "我的手机没电了，可以借你的充电器吗？",
    "天气预报说明天会下大雨。",
    "谢谢你的帮助，我们下次再见。",
]
STYLES = ("style1", "style2", "style3")
"""Our TTS's voices, taken in turn."""


@dataclass
class Utterance:
    """Where one utterance's speech starts and ends in the stream (seconds), and what was said."""

    start: float
    end: float
    reference: str


@dataclass
class Stream:
    """Audio to send and its utterances."""

    samples: np.ndarray
    utterances: list[Utterance]
    language: str
    clips: list[tuple[np.ndarray, str]]
    name: str

    @property
    def reference(self) -> str:
        """What was said: the utterances' references joined (with no space between Chinese ones)."""
        return ("" if self.language == "zh" else " ").join(u.reference for u in self.utterances)

    @property
    def pcm(self) -> bytes:
        """The samples as 16-bit PCM, what a live session is sent."""
        return pcm16(self.samples)


def speech_span(clip: np.ndarray) -> tuple[float, float]:
    """First and last speech window of a clip (Silero VAD, as the service runs it)."""
    from asr_service.vad import WINDOW, StreamingVad

    probabilities = StreamingVad().feed(clip)
    speech = np.flatnonzero(probabilities >= 0.5)
    return speech[0] * WINDOW / RATE, (speech[-1] + 1) * WINDOW / RATE


def build_stream(clips: list[tuple[np.ndarray, str]], language: str, name: str) -> Stream:
    pause = np.zeros(int(PAUSE_S * RATE), dtype=np.float32)
    pieces: list[np.ndarray] = [pause]
    utterances = []
    offset = PAUSE_S
    for clip, reference in clips:
        start, end = speech_span(clip)
        utterances.append(Utterance(offset + start, offset + end, reference))
        pieces += [clip, pause]
        offset += len(clip) / RATE + PAUSE_S
    return Stream(np.concatenate(pieces), utterances, language, clips, name)


def english_stream() -> Stream:
    """The LibriVox clips: real speech."""
    return build_stream([(read_wav(path), text) for path, text in librivox_clips()], "en", "LibriVox")


def tts_streams(languages: list[str]) -> list[Stream]:
    """:data:`ENGLISH` and :data:`CHINESE` spoken by our TTS (in-process), voices taken in turn."""
    from scipy.signal import resample_poly

    from tts_service.engine import TtsEngine
    from tts_service.settings import TtsSettings

    engine = TtsEngine(TtsSettings.load())
    engine.start(background=False)
    streams = []
    for language in languages:
        clips = []
        for index, sentence in enumerate(ENGLISH if language == "en" else CHINESE):
            speech = engine.synthesize(sentence, style=STYLES[index % len(STYLES)])
            clips.append((resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32), sentence))
        streams.append(build_stream(clips, language, f"TTS {language}"))
    engine.close()
    return streams
