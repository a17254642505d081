"""The counsellor: times the sections of a training step and keeps one JSONL log per run in the soul."""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from school.events import ChatEvent, Event, event_from_dict
from soul.atomic import append_line

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class SectionStats:
    """Durations of one named section, in seconds."""

    count: int = 0
    total: float = 0.0
    last: float = 0.0
    max: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.last = seconds
        self.max = max(self.max, seconds)


class _Timer:
    """A context manager rather than @contextmanager: it runs every step, and a generator costs more."""

    __slots__ = ("_start", "_stats", "clock")

    def __init__(self, stats: SectionStats, clock: Callable[[], float]) -> None:
        self._stats = stats
        self.clock = clock
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = self.clock()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stats.add(self.clock() - self._start)


class Counsellor:
    """Records how long named sections take: `with counsellor.time("forward"): ...`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._sections: dict[str, SectionStats] = {}

    def time(self, name: str) -> _Timer:
        """A context manager that adds the time spent inside it to section `name`."""
        stats = self._sections.get(name)
        if stats is None:
            stats = self._sections[name] = SectionStats()
        return _Timer(stats, self.clock)

    def timed(self, name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A decorator that times every call of the function as section `name`."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.time(name):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate

    def summary(self) -> dict[str, dict[str, float]]:
        """Per section: count, total, mean, last and max seconds."""
        return {
            name: {"count": s.count, "total": s.total, "mean": s.mean, "last": s.last, "max": s.max}
            for name, s in self._sections.items()
        }

    def reset(self) -> None:
        self._sections.clear()


def new_run_id() -> str:
    """UTC start time plus a random tail, e.g. `20261123-091500-ab12`: sorts by time, never collides."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


class RunLog:
    """Appends each event of one run as a JSON line to `logs_dir/<run_id>.jsonl`."""

    def __init__(self, logs_dir: Path, run_id: str | None = None, clock: Callable[[], float] = time.time):
        self.run_id = run_id or new_run_id()
        self.path = Path(logs_dir) / f"{self.run_id}.jsonl"
        self.clock = clock
        # A reused run id may end in a line cut by a crash; start on a fresh line so ours stay whole.
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    append_line(self.path, "")

    def write(self, event: Event) -> None:
        if isinstance(event, ChatEvent) and not event.final:
            return  # a reply is logged once, whole, by its final event: not a line per token
        data = event.to_dict()
        record = {
            "time": self.clock(),
            "run": self.run_id,
            "step": data.pop("step"),
            "kind": data.pop("kind"),
        }
        record.update(data)
        # append_line opens, writes and flushes each time (~20 µs): cheap at ~10 lines/s, and a
        # crash can cost only the line being written.
        append_line(self.path, json.dumps(record, ensure_ascii=False))


def logs_newest_first(logs_dir: Path) -> list[Path]:
    """Run logs by last write, newest first (not by name: two runs started within a second sort by
    their random tails)."""

    def written(path: Path) -> tuple[int, str]:
        try:  # a trainer elsewhere may prune an old log between the listing and this look
            return path.stat().st_mtime_ns, path.name
        except OSError:
            return -1, path.name

    logs = list(logs_dir.glob("*.jsonl")) if logs_dir.is_dir() else []
    return sorted(logs, key=written, reverse=True)


def newest_log(logs_dir: Path) -> Path | None:
    """The run log written last."""
    return next(iter(logs_newest_first(logs_dir)), None)


def parse_records(data: bytes) -> list[dict[str, Any]]:
    """The records among whole JSON lines; lines that do not parse (cut by a crash, garbage) are skipped."""
    records = []
    for line in data.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "kind" in record:
            records.append(record)
    return records


def tail_records(path: Path, max_bytes: int = 256 * 1024) -> list[dict[str, Any]]:
    """The whole records in the last `max_bytes` of a log: a bounded read, however long the log."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - max_bytes))
            data = f.read(max_bytes)
    except OSError:
        return []
    if size > max_bytes:
        data = data.partition(b"\n")[2]  # the first line is cut by the window
    return parse_records(data)


def event_of(record: dict[str, Any]) -> Event:
    """Rebuild the typed event from a log record (dropping the log's own `time` and `run` keys)."""
    return event_from_dict({k: v for k, v in record.items() if k not in ("time", "run")})


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one log, skipping lines that do not parse (a crash mid-write cuts the last one)."""
    # errors="replace": a cut can split a multi-byte character, which must not spoil the whole file.
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "kind" in record:
                yield record


@dataclass(frozen=True)
class RunSummary:
    """What the log browser lists for one run."""

    run_id: str
    path: Path
    start_time: float  # unix time of the first record (the file's mtime if it has none)
    end_time: float
    last_step: int  # highest step reached
    steps: int  # number of step events
    best_val_loss: float | None
    events: int
    best_val_bpb: float | None = None
    """The run's best held-out bits per byte: the headline figure."""


# The head RunLog.write puts on every line; matching it is ~5x faster than json.loads on step lines.
_HEAD = re.compile(rb'\{"time": (-?[0-9.eE+-]+), "run": "[^"\\]*", "step": (-?\d+), "kind": "(\w+)"')


def _heads(path: Path) -> Iterator[tuple[float | None, int | None, str, dict[str, Any] | None]]:
    """(time, step, kind, record or None) per record; only lines the fast path cannot read are parsed."""
    with open(path, "rb") as f:
        for line in f:
            m = _HEAD.match(line)
            # A whole line ends in "}\n"; a cut one (the last, after a crash) fails json below and is skipped.
            if m and line.endswith(b"}\n") and m[3] != b"eval":
                yield float(m[1]), int(m[2]), m[3].decode(), None
                continue
            try:
                record = json.loads(line.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "kind" in record:
                t, step = record.get("time"), record.get("step")
                t = float(t) if isinstance(t, (int, float)) else None
                yield t, step if isinstance(step, int) else None, str(record["kind"]), record


def summarize(path: Path) -> RunSummary:
    """One pass over a log, holding nothing but the running totals."""
    start = end = None
    last_step = steps = events = 0
    best: float | None = None
    best_bpb: float | None = None
    for t, step, kind, record in _heads(path):
        events += 1
        if t is not None:
            start = t if start is None else start
            end = t
        if step is not None:
            last_step = max(last_step, step)
        if kind == "step":
            steps += 1
        elif record is not None and kind == "eval" and isinstance(record.get("val_loss"), (int, float)):
            best = record["val_loss"] if best is None else min(best, record["val_loss"])
            if isinstance(bpb := record.get("val_bpb"), (int, float)):
                best_bpb = bpb if best_bpb is None else min(best_bpb, bpb)
    if start is None:
        start = end = path.stat().st_mtime
    return RunSummary(
        path.stem, path, start, end if end is not None else start, last_step, steps, best, events, best_bpb
    )


def list_runs(logs_dir: Path) -> list[RunSummary]:
    """A summary of every run log in `logs_dir`, oldest first."""
    logs_dir = Path(logs_dir)
    if not logs_dir.is_dir():
        return []
    runs = [summarize(p) for p in logs_dir.glob("*.jsonl") if p.is_file()]
    return sorted(runs, key=lambda r: (r.start_time, r.run_id))


def prune_logs(logs_dir: Path, max_bytes: int = 200 * 2**20) -> list[Path]:
    """Delete the oldest run logs until the rest fit in `max_bytes`; the newest is always kept."""
    logs = (
        sorted(Path(logs_dir).glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
        if Path(logs_dir).is_dir()
        else []
    )
    total = sum(p.stat().st_size for p in logs)
    gone = []
    for p in logs[:-1]:
        if total <= max_bytes:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def filter_events(
    events: Iterable[dict[str, Any] | Event], kind: str | None = None, text: str | None = None
) -> Iterator[dict[str, Any]]:
    """Records of `kind` (any if None) whose JSON contains `text`, ignoring case (any if None or empty).

    A chat reply is one record, its final one: the pieces it streamed in (which older logs kept,
    one per token) are left out.
    """
    needle = text.casefold() if text else None
    for event in events:
        record = event.to_dict() if isinstance(event, Event) else event
        if is_chat_piece(record):
            continue
        if kind is not None and record.get("kind") != kind:
            continue
        if needle is not None and needle not in json.dumps(record, ensure_ascii=False).casefold():
            continue
        yield record


def is_chat_piece(record: dict[str, Any]) -> bool:
    """A streamed piece of a chat reply, not the final event that holds the whole reply."""
    return record.get("kind") == "chat" and not record.get("final")
