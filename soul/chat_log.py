"""chat.jsonl, the baby's chat history: one ChatLine per message, written and read here only.

Lines written before the record had a version (or by an older `babyterm chat` that left out time
and reply_id) read as version 1 with those fields at their defaults.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soul.jsonl import append_jsonl

VERSION = 1
ROLES = ("you", "baby", "correction")


@dataclass(frozen=True)
class ChatLine:
    """One message of the history."""

    role: str
    """"you", "baby", or "correction" (the user's better answer, which became training text)."""
    text: str
    step: int
    """The baby's age when it was said."""
    weights: str = "live"
    """Which weights answered: "live (step N)", "step N" or "milestone step N"."""
    reply_id: str = ""
    """Ties a question, its reply and a correction together."""
    time: float = 0.0
    """Unix time."""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ChatLine:
        """Raises ValueError (one line) for a record that is not a chat line."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        version = data.get("version", 1)
        if not _is(version, int) or version > VERSION:
            raise ValueError(f"unknown version {version!r}")
        role, text, step = data.get("role"), data.get("text"), data.get("step")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not isinstance(text, str) or not _is(step, int):
            raise ValueError("text or step missing or of the wrong type")
        weights, reply_id, time = data.get("weights", "live"), data.get("reply_id", ""), data.get("time", 0.0)
        if not isinstance(weights, str) or not isinstance(reply_id, str) or not _is(time, float):
            raise ValueError("weights, reply_id or time of the wrong type")
        return cls(role, text, step, weights, reply_id, float(time))


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Real if kind is float else numbers.Integral)


class ChatLog:
    """The owner of one chat.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, line: ChatLine) -> None:
        append_jsonl(self.path, line.to_json())

    def tail(self, limit: int, warn: Callable[[str], None] | None = None) -> list[ChatLine]:
        """The last `limit` lines. A line cut short by a crash is skipped quietly; a whole record
        that is not a chat line is skipped with a message to `warn`."""
        out: list[ChatLine] = []
        if not self.path.exists():
            return out
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, raw in enumerate(f, 1):
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                try:
                    out.append(ChatLine.from_json(record))
                except ValueError as e:
                    if warn is not None:
                        warn(f"{self.path.name} line {n} skipped: {e}")
                if len(out) > 2 * limit:
                    del out[:-limit]
        return out[-limit:]
