"""The training process the app spawns: a tutor whose commands and events travel by queues."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import sys
import traceback
from typing import Any

from school.events import ErrorEvent, StateEvent
from school.options import TrainOptions
from soul.paths import SoulError, baby_paths


def trainer_main(options_dict: dict[str, Any], commands: Any, events: Any, watch: bool = False) -> None:
    """Entry point of the spawned process. Exits when told to stop or when the app is gone.

    watch: follow a baby that trains elsewhere (school.observer) instead of training it.
    """
    options = TrainOptions.from_dict(options_dict)
    parent = mp.parent_process()

    def put(event: Any) -> None:
        events.put(event.to_dict())

    from school.librarian import LibraryError  # torch comes with it: in this process only

    code = 0
    try:
        paths = baby_paths(options.baby, options.home)
        paths.logs.mkdir(parents=True, exist_ok=True)
        out = open(paths.trainer_log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
        sys.stdout = sys.stderr = out
        if watch:
            from school.observer import Observer as Tutor
        else:
            from school.tutor import Tutor

        from babyterm.serving import LIVE_DUTY, ServeRelay

        tutor = Tutor(options, commands=queue.Queue())  # the relay passes on all but Serve commands
        tutor.subscribe(put)
        relay = ServeRelay(commands, tutor, paths.name, put, duty=1.0 if watch else LIVE_DUTY)
        relay.start()
        try:
            tutor.run(should_continue=lambda: parent is None or parent.is_alive())
        finally:
            relay.stop()
    except (SoulError, LibraryError) as e:
        put(ErrorEvent(0, str(e), fatal=True))
        code = 2
    except Exception as e:
        traceback.print_exc()
        put(ErrorEvent(0, f"trainer crashed: {type(e).__name__}: {e}", fatal=True))
        code = 1
    finally:
        put(StateEvent(0, "stopped", "" if code == 0 else "error"))
        events.close()
        with contextlib.suppress(Exception):
            events.join_thread()  # flush what is queued before the process ends
    sys.exit(code)
