"""Tests for the counsellor: section timing and the JSONL run logs."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from school.counsellor import (
    Counsellor,
    RunLog,
    event_of,
    filter_events,
    list_runs,
    new_run_id,
    newest_log,
    read_log,
    tail_records,
)
from school.events import (
    ChatEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    GuessEvent,
    PixelEvent,
    ProgressEvent,
    RaceAnswerEvent,
    RacePointEvent,
    SaveEvent,
    ScribeEvent,
    StateEvent,
    StepEvent,
    event_from_dict,
)


class Ticks:
    """A clock that moves only when told."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _step(step: int, loss: float = 4.0) -> StepEvent:
    return StepEvent(
        step, loss, 3e-4, 0.9, 0.25, step * 64, 1234.5, step * 0.1, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6)
    )


ALL_EVENTS: list[Event] = [
    _step(1),
    EvalEvent(2, 3.5, 1.25, 3.75),
    GuessEvent(3, "Once", " upon a tïme", " upon a time", 0.75),
    ScribeEvent(3, "great", "Lovely “work”.", "upon", "upon"),
    PixelEvent(4, (0.1, 0.2, 0.3), (0.3, 0.2, 0.1), 1.1, 0.02, 0.3, 0.5),
    SaveEvent(5, "/soul/ckpt", "manual", 0.125),
    ErrorEvent(6, "disk full", fatal=True),
    StateEvent(7, "paused"),
    ProgressEvent(0, "tokenizer", 0.5, "merging"),
    ChatEvent(8, "r1", "hi [b]there[/b]\n", final=True, prompt="hello", tokens=[{"t": "hi", "p": 0.5}]),
    RacePointEvent(9, "mlp", 1.5, 4.25),
    RaceAnswerEvent(9, "mlp", "The", "the [cat]"),
]


def test_time_records_sections_with_a_fake_clock() -> None:
    clock = Ticks()
    c = Counsellor(clock=clock)
    for seconds in (1.0, 3.0):
        with c.time("forward"):
            clock.now += seconds
    with c.time("backward"):
        clock.now += 0.5
    s = c.summary()
    assert s["forward"] == {"count": 2, "total": 4.0, "mean": 2.0, "last": 3.0, "max": 3.0}
    assert s["backward"]["count"] == 1 and s["backward"]["total"] == 0.5
    c.reset()
    assert c.summary() == {}


def test_timed_decorator_and_exceptions() -> None:
    clock = Ticks()
    c = Counsellor(clock=clock)

    @c.timed("work")
    def work(x: int) -> int:
        """Doc."""
        clock.now += 2.0
        if x < 0:
            raise ValueError("negative")
        return x * 2

    assert work(21) == 42 and work.__name__ == "work" and work.__doc__ == "Doc."
    with pytest.raises(ValueError):
        work(-1)
    assert c.summary()["work"]["count"] == 2 and c.summary()["work"]["total"] == 4.0


def test_time_uses_a_real_clock_by_default() -> None:
    c = Counsellor()
    with c.time("nap"):
        time.sleep(0.002)
    assert 0.001 < c.summary()["nap"]["last"] < 1.0


def test_run_ids_sort_by_time_and_differ() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) > 45  # 16 random bits within one second: collisions are possible, not likely
    for run_id in ids:
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run_id)
    before = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_id = new_run_id()
    after = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    assert before <= run_id[:15] <= after


def test_write_read_round_trip(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "logs", run_id="r1", clock=Ticks(1000.0))
    for event in ALL_EVENTS:
        log.write(event)
    assert log.path == tmp_path / "logs" / "r1.jsonl"
    records = list(read_log(log.path))
    assert len(records) == len(ALL_EVENTS)
    for record, event in zip(records, ALL_EVENTS, strict=True):
        assert list(record)[:4] == ["time", "run", "step", "kind"]
        assert record["time"] == 1000.0 and record["run"] == "r1" and record["kind"] == event.kind
        assert event_of(record) == event
        assert event_from_dict(record) == event  # extra keys are ignored by the events module too


def test_truncated_last_line_is_skipped_and_reuse_starts_fresh(tmp_path: Path) -> None:
    log = RunLog(tmp_path, run_id="crash")
    for i in range(3):
        log.write(_step(i))
    whole = json.dumps(
        {"time": 1.0, "run": "crash", "step": 3, "kind": "guess", "guess": "é"}, ensure_ascii=False
    )
    with open(log.path, "ab") as f:
        f.write(whole.encode()[:-3])  # cut inside the multi-byte "é", no newline
    assert [r["step"] for r in read_log(log.path)] == [0, 1, 2]
    assert list_runs(tmp_path)[0].events == 3
    again = RunLog(tmp_path, run_id="crash")
    again.write(_step(9))
    assert [r["step"] for r in read_log(log.path)] == [0, 1, 2, 9]
    assert list_runs(tmp_path)[0].events == 4


def test_list_runs_summaries(tmp_path: Path) -> None:
    late = RunLog(tmp_path, run_id="b-late", clock=Ticks(200.0))
    early_clock = Ticks(100.0)
    early = RunLog(tmp_path, run_id="a-early", clock=early_clock)
    for i in range(1, 6):
        late.write(_step(i * 10))
    late.write(EvalEvent(50, 3.0, 1.1, 3.2))
    late.write(EvalEvent(60, 2.5, 1.0, 3.0))
    late.write(EvalEvent(70, 2.75, 1.05, 2.9))
    late.write(SaveEvent(70, "x", "stop", 0.1))
    early.write(StateEvent(0, "starting"))
    early.write(_step(1))
    early_clock.now = 130.0
    early.write(_step(2))
    (tmp_path / "trainer.out").write_text("not a run\n")
    # A line written by something else, with its keys in another order, still counts.
    with open(early.path, "a") as f:
        f.write(json.dumps({"kind": "step", "step": 3, "time": 140.0, **_step(3).to_dict()}) + "\n")

    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs] == ["a-early", "b-late"]
    a, b = runs
    assert (a.start_time, a.end_time, a.last_step, a.steps, a.events) == (100.0, 140.0, 3, 3, 4)
    assert a.best_val_loss is None
    assert (b.start_time, b.last_step, b.steps, b.events, b.best_val_loss) == (200.0, 70, 5, 9, 2.5)
    assert b.best_val_bpb == 1.0 and a.best_val_bpb is None  # the headline: held-out bits per byte
    assert b.path == tmp_path / "b-late.jsonl"
    assert list_runs(tmp_path / "missing") == []


def test_filter_events(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    for event in ALL_EVENTS:
        log.write(event)
    records = list(read_log(log.path))
    assert [r["kind"] for r in filter_events(records, kind="step")] == ["step"]
    assert [r["kind"] for r in filter_events(records, text="UPON A TÏME")] == ["guess"]
    assert {r["kind"] for r in filter_events(records, text="upon")} == {"guess", "scribe"}
    assert [r["kind"] for r in filter_events(records, kind="scribe", text="upon")] == ["scribe"]
    assert list(filter_events(records, kind="eval", text="nowhere")) == []
    assert len(list(filter_events(records))) == len(ALL_EVENTS)
    assert [r["reason"] for r in filter_events(ALL_EVENTS, text="manual")] == ["manual"]


def test_a_chat_reply_is_one_record_in_the_log(tmp_path: Path) -> None:
    log = RunLog(tmp_path, run_id="chat")
    for piece in ("the", " cat"):
        log.write(ChatEvent(3, "r1", piece))
    log.write(ChatEvent(3, "r1", "the cat", final=True, prompt="hi"))
    records = list(read_log(log.path))
    assert [(r["text"], r["final"]) for r in records] == [("the cat", True)]
    older = [{"kind": "chat", "text": "the"}, {"kind": "chat", "text": "the cat", "final": True}]
    assert [r["text"] for r in filter_events(older)] == ["the cat"]  # logs that kept every piece


def test_prune_logs_keeps_the_newest_within_the_budget(tmp_path: Path) -> None:
    import os

    from school.counsellor import prune_logs

    for i in range(5):
        p = tmp_path / f"run{i}.jsonl"
        p.write_bytes(b"x" * 1000)
        os.utime(p, ns=(i * 10**9, i * 10**9))
    gone = prune_logs(tmp_path, max_bytes=2500)
    assert sorted(p.name for p in gone) == ["run0.jsonl", "run1.jsonl", "run2.jsonl"]
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["run3.jsonl", "run4.jsonl"]
    assert prune_logs(tmp_path, max_bytes=10) == [tmp_path / "run3.jsonl"]  # the newest stays


def test_tail_records_reads_a_bounded_window_of_whole_records(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    with open(log, "w", encoding="utf-8") as f:
        for step in range(5000):
            f.write(json.dumps({"kind": "step", "step": step, "note": "ü" * (step % 7)}) + "\n")
        f.write('{"kind": "step", "step": 50')  # the line a crash cut short
    tail = tail_records(log, max_bytes=4096)
    steps = [r["step"] for r in tail]
    assert steps == list(range(steps[0], 5000)) and 0 < len(steps) < 200
    assert tail_records(tmp_path / "missing.jsonl") == []
    assert [r["step"] for r in tail_records(log, max_bytes=10**9)] == list(range(5000))


def test_newest_log_is_the_last_written(tmp_path: Path) -> None:
    assert newest_log(tmp_path / "none") is None
    for name, mtime in (("b-older.jsonl", 100), ("a-newer.jsonl", 200)):
        (tmp_path / name).write_text("{}\n")
        os.utime(tmp_path / name, ns=(mtime * 10**9, mtime * 10**9))
    assert newest_log(tmp_path) == tmp_path / "a-newer.jsonl"
