"""Append-only JSON-lines files (logs, chat history, scribe lines): write a line, read back what is whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soul.atomic import append_line


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    append_line(path, json.dumps(record, ensure_ascii=False))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield each complete record; a line cut short by a crash, or garbage, is skipped."""
    if not Path(path).exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def tail_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    """The last `limit` records."""
    out: list[dict[str, Any]] = []
    for record in read_jsonl(path):
        out.append(record)
        if len(out) > 2 * limit:
            del out[:-limit]
    return out[-limit:]
