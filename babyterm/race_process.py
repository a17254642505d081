"""The race's own process, spawned by babyterm.race_link: school.race with its results sent as events."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import threading
import traceback
from typing import Any

from school.events import ErrorEvent, RaceAnswerEvent, RacePointEvent, StateEvent
from soul.paths import SoulError, resolve_home

PARENT_POLL_S = 0.5


def _leave_with_the_app() -> None:
    """The race has no stop signal between steps: a watchdog ends the process if the app is gone."""
    parent = mp.parent_process()
    while parent is None or parent.is_alive():
        threading.Event().wait(PARENT_POLL_S)
    os._exit(0)


def race_main(settings: dict[str, Any], events: Any) -> None:
    """Entry point: race `settings` (school.race.race's arguments, JSON-ready), events onto `events`."""

    def put(event: Any) -> None:
        events.put(event.to_dict())

    threading.Thread(target=_leave_with_the_app, daemon=True).start()
    try:  # the output goes to a file before torch is imported: a warning must not reach the screen
        home = resolve_home(settings.get("home"))
        home.mkdir(parents=True, exist_ok=True)
        out = open(home / "race.log", "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
        sys.stdout = sys.stderr = out
    except OSError as e:
        put(ErrorEvent(0, f"cannot write the race's log: {e.strerror or e}", fatal=True))
        put(StateEvent(0, "stopped", "error"))
        events.close()
        events.join_thread()
        sys.exit(2)
    from school.librarian import LibraryError  # torch comes with it: in this process only
    from school.race import race

    code = 0
    try:
        race(
            **settings,
            on_point=lambda p: put(RacePointEvent(p.step, p.brain, p.seconds, p.val_bpb)),
            on_answer=lambda a: put(RaceAnswerEvent(0, a.brain, a.prompt, a.answer)),
            log=lambda message: put(ErrorEvent(0, message)),
        )
    except (SoulError, LibraryError) as e:
        put(ErrorEvent(0, str(e), fatal=True))
        code = 2
    except Exception as e:
        traceback.print_exc()
        put(ErrorEvent(0, f"the race crashed: {type(e).__name__}: {e}", fatal=True))
        code = 1
    finally:
        put(StateEvent(0, "stopped", "" if code == 0 else "error"))
        events.close()
        with contextlib.suppress(Exception):
            events.join_thread()
    sys.exit(code)
