"""The TTS text front end: clause splitting, language runs, English numbers."""

from __future__ import annotations

import pytest

from tts_service.text import (
    CLAUSE_PAUSE_S,
    SENTENCE_PAUSE_S,
    language_runs,
    normalize_english,
    number_words,
    ordinal_words,
    split_clauses,
    year_words,
)


def test_clauses_split_at_chinese_and_english_punctuation() -> None:
    clauses = split_clauses("你好，世界。今天好吗？Fine, thanks! Really; yes: ok…最后、一句")
    assert [c.text for c in clauses] == [
        "你好，", "世界。", "今天好吗？", "Fine,", "thanks!", "Really;", "yes:", "ok…", "最后、", "一句",
    ]  # fmt: skip
    assert clauses[0].pause_s == CLAUSE_PAUSE_S and clauses[1].pause_s == SENTENCE_PAUSE_S


def test_decimals_abbreviations_and_thousands_do_not_split() -> None:
    texts = [c.text for c in split_clauses("Dr. Smith paid $3.50, or 1,234 yuan. Pi is 3.14.")]
    assert texts == ["Dr. Smith paid $3.50,", "or 1,234 yuan.", "Pi is 3.14."]


def test_long_text_without_punctuation_is_cut_into_bounded_pieces() -> None:
    clauses = split_clauses("word " * 500, max_chars=120)
    assert len(clauses) > 15 and all(len(c.text) <= 120 for c in clauses)
    chinese = split_clauses("中" * 1000, max_chars=100)
    assert len(chinese) == 10 and all(len(c.text) == 100 for c in chinese)


def test_pieces_with_nothing_to_say_are_dropped() -> None:
    assert split_clauses("!!! ... 。。。") == []
    assert [c.text for c in split_clauses("好。。。！！！")] == ["好。"]


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("你好，这是调节参数后的TTS测试", [("zh", "你好，这是调节参数后的"), ("en", "TTS"), ("zh", "测试")]),
        ("涨了30%的version 3", [("zh", "涨了30%的"), ("en", "version 3")]),
        ("2024年 Привет", [("zh", "2024年 "), ("ru", "Привет")]),
        ("123", [("en", "123")]),
        ("こんにちは world", [("ja", "こんにちは "), ("en", "world")]),
    ],
)
def test_language_runs(text: str, runs: list[tuple[str, str]]) -> None:
    assert language_runs(text) == runs


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("$12.50", "twelve dollars and fifty cents"),
        ("$1", "one dollar"),
        ("€3 million", "three million euros"),
        ("up 5%", "up five percent"),
        ("12.5%", "twelve point five percent"),
        ("on 2024-03-05", "on March fifth, twenty twenty-four"),
        ("at 10:30", "at ten thirty"),
        ("at 7:05 pm", "at seven oh five P M"),
        ("the 21st time", "the twenty-first time"),
        ("in 1999", "in nineteen ninety-nine"),
        ("the 1990s", "the nineteen nineties"),
        ("1,234,567 people", "one million two hundred thirty-four thousand five hundred sixty-seven people"),
        ("-4 degrees", "minus four degrees"),
        ("R&D", "R and D"),
    ],
)
def test_english_numbers_are_spelled_out(text: str, spoken: str) -> None:
    assert normalize_english(text) == spoken


def test_number_helpers() -> None:
    assert number_words(0) == "zero" and number_words(105) == "one hundred five"
    assert number_words(2_000_001) == "two million one"
    assert ordinal_words(12) == "twelfth" and ordinal_words(40) == "fortieth"
    assert ordinal_words(103) == "one hundred third"
    assert year_words(2005) == "two thousand five" and year_words(1905) == "nineteen oh five"
    assert year_words(1900) == "nineteen hundred"
