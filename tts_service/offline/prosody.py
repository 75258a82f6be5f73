"""Pitch and speaking-rate measurement and pitch shifting (Praat through praat-parselmouth).

This is what lets the offline engine follow a reference recording: it matches the reference's
median pitch and speaking rate. It is pitch/tempo matching, not voice cloning.
"""

from __future__ import annotations

import threading

import numpy as np
import parselmouth
from parselmouth.praat import call
from scipy.signal import find_peaks

PITCH_FLOOR_HZ = 60.0
PITCH_CEILING_HZ = 600.0
_praat = threading.Lock()  # Praat keeps global state; request threads take turns


def _sound(samples: np.ndarray, sample_rate: int) -> parselmouth.Sound:
    return parselmouth.Sound(samples.astype(np.float64), sampling_frequency=sample_rate)


def measure_voice(samples: np.ndarray, sample_rate: int) -> tuple[float | None, float | None]:
    """``(median pitch in Hz, syllables per second)`` of a recording; one pitch analysis serves both.

    None for a measure the recording has too little voiced speech for.
    """
    with _praat:
        sound = _sound(samples, sample_rate)
        pitch = _pitch(sound, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
        return _median_pitch(sound, pitch), _speaking_rate(sound, pitch)


def median_pitch(samples: np.ndarray, sample_rate: int) -> float | None:
    """Median F0 in Hz of the voiced frames, or None if there are too few."""
    with _praat:
        sound = _sound(samples, sample_rate)
        return _median_pitch(sound, _pitch(sound, PITCH_FLOOR_HZ, PITCH_CEILING_HZ))


def _pitch(sound: parselmouth.Sound, floor: float, ceiling: float) -> parselmouth.Pitch:
    return sound.to_pitch_ac(pitch_floor=floor, pitch_ceiling=ceiling)


def _voiced(pitch: parselmouth.Pitch) -> np.ndarray:
    frequencies = pitch.selected_array["frequency"]
    return frequencies[frequencies > 0]


def _median_pitch(sound: parselmouth.Sound, first_pass: parselmouth.Pitch) -> float | None:
    """The first pass (60-600 Hz) is refined within 0.5x-2x of its median, which removes most octave
    errors on low voices."""
    first = _voiced(first_pass)
    if first.size < 10:
        return None
    guess = float(np.median(first))
    refined = _voiced(_pitch(sound, max(PITCH_FLOOR_HZ, guess / 2), min(PITCH_CEILING_HZ * 1.5, guess * 2)))
    return float(np.median(refined)) if refined.size >= 10 else guess


def _speaking_rate(sound: parselmouth.Sound, pitch: parselmouth.Pitch) -> float | None:
    """Syllables per second of speaking time, estimated from voiced intensity peaks.

    Counts peaks of the intensity contour that stand 2 dB above their surroundings, lie within
    25 dB of the loudest frame and fall in voiced frames (after de Jong & Wempe's syllable-nuclei
    method); pauses longer than 0.3 s are excluded from the time. None if no speech is found.
    """
    intensity = sound.to_intensity(minimum_pitch=PITCH_FLOOR_HZ)
    levels = intensity.values[0]
    if levels.size < 5:
        return None
    times = np.array([intensity.get_time_from_frame_number(i + 1) for i in range(len(levels))])
    threshold = float(np.max(levels)) - 25.0
    peaks, _ = find_peaks(levels, height=threshold, prominence=2.0)
    voiced = [t for t in times[peaks] if _voiced_at(pitch, t)]
    speech_seconds = _speaking_time(levels > threshold, float(times[1] - times[0]))
    if not voiced or speech_seconds < 0.3:
        return None
    return len(voiced) / speech_seconds


def _voiced_at(pitch: parselmouth.Pitch, time: float) -> bool:
    value = pitch.get_value_at_time(time)
    return value is not None and not np.isnan(value) and value > 0


def _speaking_time(loud: np.ndarray, frame: float, max_gap_s: float = 0.3) -> float:
    """Seconds of loud frames, counting gaps shorter than ``max_gap_s`` as speech."""
    total = 0
    gap = 0
    seen = False
    for is_loud in loud:
        if is_loud:
            if seen and gap * frame < max_gap_s:
                total += gap
            total += 1
            gap = 0
            seen = True
        else:
            gap += 1
    return total * frame


def shift_pitch(samples: np.ndarray, sample_rate: int, ratio: float) -> np.ndarray:
    """Multiply the pitch by ``ratio`` keeping duration and formants (Praat's PSOLA overlap-add)."""
    if abs(ratio - 1.0) < 0.01 or samples.size < sample_rate // 10:
        return samples
    with _praat:
        sound = _sound(samples, sample_rate)
        manipulation = call(sound, "To Manipulation", 0.01, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
        tier = call(manipulation, "Extract pitch tier")
        call(tier, "Multiply frequencies", sound.xmin, sound.xmax, ratio)
        call([tier, manipulation], "Replace pitch tier")
        shifted = call(manipulation, "Get resynthesis (overlap-add)")
        return np.asarray(shifted.values[0], dtype=np.float32)
