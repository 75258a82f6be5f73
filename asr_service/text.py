"""Transcript text clean-up that does not depend on the backend."""

from __future__ import annotations

import re

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_FULL_WIDTH = {",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；"}
# ASCII punctuation touching a CJK character (before it, or after it with optional spaces)
_PUNCT_AFTER_CJK = re.compile(rf"(?<=[{_CJK}])\s*([,.?!:;])(?!\d)\s*")
_PUNCT_BEFORE_CJK = re.compile(rf"\s*([,.?!:;])\s*(?=[{_CJK}])")


def chinese_punctuation(text: str) -> str:
    """ASCII ``, . ? ! : ;`` next to Chinese characters become full-width (，。？！：；).

    ``"对,这就是我!"`` gives ``"对，这就是我！"``; ``3.5`` and Latin-only phrases are left alone.
    """

    def full(match: re.Match[str]) -> str:
        return _FULL_WIDTH[match.group(1)]

    return _PUNCT_BEFORE_CJK.sub(full, _PUNCT_AFTER_CJK.sub(full, text))
