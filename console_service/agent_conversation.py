"""A conversation's items: what the person said, what the agent said (and how much of it was heard).

The LLM's prompt is built from these: the instructions, then the items in order, consecutive turns of
one role joined, the oldest dropped first when the whole would not fit the history budget.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadRequest, NotFound

_item_numbers = itertools.count(1)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def new_id(prefix: str) -> str:
    """A fresh id such as ``item_12_3f9a…``."""
    return f"{prefix}_{next(_item_numbers)}{uuid.uuid4().hex[:12]}"


def estimate_tokens(text: str) -> int:
    """A rough token count: one per CJK character, one per four other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def is_chinese(text: str) -> bool:
    """Whether ``text`` is mostly CJK (the reply's voice and clause rules follow it)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(bool(_CJK.match(c)) for c in letters) * 2 >= len(letters)


@dataclass
class Span:
    """A piece of a spoken reply and where its audio lies in the item's audio."""

    text: str
    start_ms: float
    end_ms: float


@dataclass
class Item:
    """One message of the conversation."""

    id: str
    role: str
    """``user``, ``assistant`` or ``system``."""
    audio: bool
    """Spoken (``input_audio``/``output_audio``) rather than typed."""
    text: str | None = ""
    """Its words; None while a spoken turn's transcript is still being decoded."""
    status: str = "completed"
    spans: list[Span] = field(default_factory=list)
    """An assistant audio item's pieces as they were sent, for truncation."""

    @property
    def audio_ms(self) -> float:
        """Length of the audio sent for this item."""
        return self.spans[-1].end_ms if self.spans else 0.0

    def describe(self, beta: bool) -> dict[str, Any]:
        """The Realtime ``item`` object (no audio data)."""
        if self.role == "user" and self.audio:
            part: dict[str, Any] = {"type": "input_audio", "transcript": self.text}
        elif self.role == "assistant" and self.audio:
            part = {"type": "audio" if beta else "output_audio", "transcript": self.text}
        elif self.role == "assistant":
            part = {"type": "text" if beta else "output_text", "text": self.text}
        else:
            part = {"type": "input_text", "text": self.text}
        return {
            "id": self.id,
            "object": "realtime.item",
            "type": "message",
            "role": self.role,
            "status": self.status,
            "content": [part],
        }

    def truncate(self, audio_end_ms: int) -> None:
        """Keep only what was heard of an assistant audio item: the text up to ``audio_end_ms``.

        Raises:
            BadRequest: not an assistant audio item, or ``audio_end_ms`` past its audio.
        """
        if self.role != "assistant" or not self.audio:
            raise BadRequest("only an assistant's audio item can be truncated", param="item_id")
        if audio_end_ms > self.audio_ms + 1:
            raise BadRequest(
                f"audio_end_ms {audio_end_ms} is past the item's {self.audio_ms:.0f} ms of audio",
                param="audio_end_ms",
                code="invalid_value",
            )
        kept: list[Span] = []
        for span in self.spans:
            if span.start_ms >= audio_end_ms:
                break
            if span.end_ms > audio_end_ms:  # heard in part: keep the share of its words that was played
                share = (audio_end_ms - span.start_ms) / max(span.end_ms - span.start_ms, 1)
                span = Span(_head(span.text, share), span.start_ms, audio_end_ms)
            kept.append(span)
        self.spans = kept
        self.text = _join([span.text for span in kept])
        self.status = "incomplete"


class Conversation:
    """The items of one session, in order."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (default: at the end); returns the id before it.

        Raises:
            NotFound: ``previous_item_id`` is not in the conversation.
        """
        index = len(self.items)
        if previous_item_id is not None:
            index = self.items.index(self.find(previous_item_id)) + 1
        self.items.insert(index, item)
        return self.items[index - 1].id if index else None

    def find(self, item_id: Any) -> Item:
        """The item with this id.

        Raises:
            NotFound: no such item.
        """
        for item in self.items:
            if item.id == item_id:
                return item
        raise NotFound(f"no item {str(item_id)[:80]!r} in the conversation", param="item_id", code="item_not_found")

    def delete(self, item_id: Any) -> None:
        """Remove an item.

        Raises:
            NotFound: no such item.
        """
        self.items.remove(self.find(item_id))

    def awaiting_transcript(self) -> bool:
        """Whether a spoken turn's words are still being decoded."""
        return any(item.text is None for item in self.items)

    def messages(self, instructions: str, budget_tokens: int) -> list[dict[str, str]]:
        """The LLM's messages: instructions, then the newest turns that fit ``budget_tokens``."""
        turns: list[dict[str, str]] = []
        for item in self.items:
            if not item.text:
                continue
            role = "system" if item.role == "system" else item.role
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] = _join([turns[-1]["content"], item.text])
            else:
                turns.append({"role": role, "content": item.text})
        budget = budget_tokens - estimate_tokens(instructions)
        kept: list[dict[str, str]] = []
        for turn in reversed(turns):
            budget -= estimate_tokens(turn["content"]) + 4
            if budget < 0 and kept:
                break
            kept.append(turn)
        kept.reverse()
        while len(kept) > 1 and kept[0]["role"] == "assistant":
            kept.pop(0)  # a reply whose question was dropped
        return [{"role": "system", "content": instructions}, *kept] if instructions else kept


def typed_item(data: Any) -> Item:
    """The item of a ``conversation.item.create``: a message of text parts.

    Raises:
        BadRequest: not a message, an unknown role, no text parts, or a bad id.
    """
    if not isinstance(data, dict) or data.get("type", "message") != "message":
        raise BadRequest("conversation.item.create needs an `item` of type message", param="item")
    role = data.get("role")
    if role not in ("user", "assistant", "system"):
        raise BadRequest("item.role must be user, assistant or system", param="item.role")
    content = data.get("content")
    if not isinstance(content, list) or not content:
        raise BadRequest("item.content must be a list of text parts", param="item.content")
    texts = [part.get("text") for part in content if isinstance(part, dict)]
    if not texts or not all(isinstance(text, str) for text in texts):
        raise BadRequest(
            "each content part needs `text` (audio items come from the input buffer)", param="item.content"
        )
    item_id = data.get("id") or new_id("item")
    if not isinstance(item_id, str) or len(item_id) > 64:
        raise BadRequest("item.id must be a string of at most 64 characters", param="item.id")
    return Item(item_id, role, audio=False, text=" ".join(texts))


def _join(pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        glue = "" if not text or (_CJK.search(text[-1]) and _CJK.search(piece[0])) else " "
        text += glue + piece
    return text


def _head(text: str, share: float) -> str:
    """The first ``share`` of a text's words (characters, for CJK)."""
    if _CJK.search(text):
        return text[: round(len(text) * share)]
    words = text.split()
    return " ".join(words[: round(len(words) * share)])
