"""Watching a baby that trains elsewhere: its log replayed as events, chat from its newest checkpoint."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from school.commands import Chat, Pause
from school.events import ChatEvent, Event, StateEvent, StepEvent
from school.observer import LogTail, Observer
from tests.test_tutor import make_tutor, wait_for


def test_log_tail_yields_only_whole_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_text('{"kind": "step", "step": 1}\n{"kind": "st')
    tail = LogTail(tmp_path)
    assert [r["step"] for r in tail.read()] == [1]
    with open(log, "a") as f:
        f.write('ep", "step": 2}\n')
    assert [r["step"] for r in tail.read()] == [2]
    time.sleep(0.01)
    (tmp_path / "run0.jsonl").write_text('{"kind": "eval", "step": 3}\n')  # a newer run takes over
    assert [r["step"] for r in tail.read()] == [3]


def test_observer_follows_training_and_answers_from_the_newest_checkpoint(small_library: Path) -> None:
    trainer = make_tutor(small_library)
    trainer.options.steps = 10
    trainer.run()

    observer = Observer(trainer.options)
    events: list[Event] = []
    observer.subscribe(events.append)
    alive = threading.Event()
    alive.set()
    thread = threading.Thread(target=observer.run, args=(alive.is_set,))
    thread.start()
    try:
        wait_for(lambda: any(isinstance(e, StepEvent) and e.step == 10 for e in events))
        assert any(isinstance(e, StateEvent) and e.state == "watching" for e in events)

        again = make_tutor(small_library)  # the trainer goes on "elsewhere"
        again.options.steps = 10
        again.run()
        wait_for(lambda: any(isinstance(e, StepEvent) and e.step == 20 for e in events))
        wait_for(lambda: observer.weights_step == 20)  # the newer checkpoint was loaded

        observer.send(Chat(id="w1", text="Hello", max_tokens=3, temperature=0))
        wait_for(lambda: any(isinstance(e, ChatEvent) and e.final and e.reply_id == "w1" for e in events))
        observer.send(Pause())
        wait_for(lambda: any("belongs to the trainer" in getattr(e, "message", "") for e in events))
    finally:
        alive.clear()
        thread.join(10)
    assert not thread.is_alive()
