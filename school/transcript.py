"""Chat transcripts: the baby's chat history (soul/chat_log.py) as Markdown, torch-free.

One section per exchange: the question, the reply, which weights answered and at what step, and a
correction if the user gave one. Text goes in code fences, so whatever the baby (or the user) wrote
(`#`, `*`, a stray `[`) shows as written instead of being taken for Markdown.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from soul.atomic import write_text_atomic
from soul.chat_log import ChatLine, ChatLog
from soul.paths import BabyPaths, SoulError, file_in_the_way

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


@dataclass
class Exchange:
    """A question and what came of it; a reply whose question was not kept has prompt None."""

    prompt: ChatLine | None = None
    reply: ChatLine | None = None
    corrections: list[ChatLine] = field(default_factory=list)

    @property
    def time(self) -> float:
        return next(line.time for line in (self.prompt, self.reply, *self.corrections) if line is not None)


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a date (2026-12-01, 2026-12-01T09:30, local unless it names its zone) or a duration
    back from now (90s, 30m, 2h, 7d, 1w, or 1h30m); the Unix time it names. SoulError if neither."""
    words = text.strip().lower().replace(" ", "")
    if words and _DURATION.sub("", words) == "":
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(words))
        return (time.time() if now is None else now) - seconds
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SoulError(
            f"--since takes a date like 2026-12-01 or a duration like 2h or 7d, not {text!r}"
        ) from None
    try:
        return when.timestamp()  # a naive date is local time, as the user reads their clock
    except (OverflowError, OSError, ValueError):  # 0001-01-01: before what the clock can say
        if when.year < 1970:
            return -math.inf  # before every line of the history: all of it
        raise SoulError(f"--since {text!r} is beyond what this machine's clock can say") from None


def exchanges(lines: Iterable[ChatLine]) -> list[Exchange]:
    """Group the history into exchanges by reply id (lines from before ids: a question and the next
    reply), in the order they began."""
    out: list[Exchange] = []
    by_id: dict[str, Exchange] = {}
    open_question: Exchange | None = None  # an id-less question waiting for its reply
    for line in lines:
        known = by_id.get(line.reply_id) if line.reply_id else None
        if line.role == "you":
            ex = Exchange(prompt=line)
            out.append(ex)
            if line.reply_id:
                by_id[line.reply_id] = ex
            else:
                open_question = ex
        elif line.role == "baby":
            ex = known
            if ex is None and not line.reply_id and open_question is not None:
                ex, open_question = open_question, None
            if ex is None or ex.reply is not None:
                ex = Exchange()
                out.append(ex)
                if line.reply_id:
                    by_id[line.reply_id] = ex
            ex.reply = line
        elif line.role == "correction":
            ex = known or (out[-1] if out else None)
            if ex is None:
                ex = Exchange()
                out.append(ex)
            ex.corrections.append(line)
    return out


def _fenced(text: str) -> str:
    """Text in a fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _when(t: float) -> str:
    if t <= 0:
        return "time unknown"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(name: str, found: list[Exchange], since: float | None = None) -> str:
    """The Markdown transcript of `found` exchanges with baby `name`."""
    head = [f"# Chat with {name}", ""]
    span = f"from {_when(found[0].time)} to {_when(found[-1].time)}" if found else "none"
    count = f"{len(found)} exchange{'s' if len(found) != 1 else ''}"
    scope = f"since {_when(since)}" if since is not None and math.isfinite(since) else "the whole history"
    head += [f"{count} ({scope}), {span}.", ""]
    body: list[str] = []
    for n, ex in enumerate(found, 1):
        step = ex.reply.step if ex.reply is not None else (ex.prompt or ex.corrections[0]).step
        body += [f"## {n}. {_when(ex.time)} · step {step:,}", ""]
        if ex.prompt is not None:
            body += ["**You:**", "", _fenced(ex.prompt.text), ""]
        if ex.reply is not None:
            body += [f"**{name}** (answered by {ex.reply.weights}):", "", _fenced(ex.reply.text), ""]
        for c in ex.corrections:
            body += ["**Your correction** (became training text):", "", _fenced(c.text), ""]
    return "\n".join(head + body).rstrip("\n") + "\n"


def export_transcript(
    chat_log: Path,
    name: str,
    out: Path,
    since: float | None = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Write the transcript of `chat_log` (a baby's chat.jsonl) to `out` atomically; the number of
    exchanges written. SoulError (one line, nothing written) when there is nothing to write."""
    out = Path(out)
    if out.is_dir():
        raise SoulError(f"{out} is a folder: name the Markdown file to write")
    blocked = file_in_the_way(out.parent)
    if blocked is not None:
        raise SoulError(f"cannot write {out}: {blocked} is a file, not a folder")
    lines = ChatLog(chat_log).tail(sys.maxsize, warn=warn)
    if not lines:
        raise SoulError(f"baby {name!r} has no chat history to export yet")
    found = [ex for ex in exchanges(lines) if since is None or ex.time >= since]
    if not found:
        raise SoulError(f"no chat with {name!r} since {_when(since or 0)}")
    try:
        write_text_atomic(out, render(name, found, since))
    except OSError as e:
        raise SoulError(f"cannot write {out}: {e.strerror or e}") from None
    return len(found)


def export_baby_transcript(
    paths: BabyPaths, out: Path, since: str | None = None, warn: Callable[[str], None] | None = None
) -> int:
    """`babyterm chat --export`: a baby's whole history, or what was said since `since`."""
    if not paths.exists():
        raise paths.missing()
    when = parse_since(since) if since else None
    return export_transcript(paths.chat, paths.name, out, when, warn=warn)
