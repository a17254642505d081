"""The race view's line to a race: it runs in a spawned process (babyterm.race_process), never with
torch in the app's process, and sends its points and answers back as events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from babyterm.link import drain, spawn_context
from school.events import ErrorEvent, Event, StateEvent, TrainerState


@dataclass(frozen=True)
class RaceSettings:
    """What to race (school.race.race's arguments that travel to the race's process)."""

    library: str | None
    minutes: float
    brains: tuple[str, ...]
    home: str | None = None
    preset: str = "tiny"
    prompt: str = "The"
    device: str = "auto"
    threads: int | None = None
    seed: int = 1337
    replace: bool = False
    """Start over racers that grew since their race (school.race.grown_since_race)."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "brains": list(self.brains)}


class RaceLink(Protocol):
    """What the race view needs from a race, wherever it runs."""

    settings: RaceSettings

    def start(self) -> None: ...
    def poll(self, max_events: int = 500) -> list[Event]: ...
    def is_alive(self) -> bool: ...
    def stop(self) -> None: ...


class ProcessRaceLink:
    """Runs school.race in a spawned process (prepare_multiprocessing must have run before App.run)."""

    def __init__(self, settings: RaceSettings) -> None:
        self.settings = settings
        self._context = spawn_context()
        self._events = self._context.Queue()
        self._process: Any = None
        self._reported_exit = False

    def start(self) -> None:
        from babyterm.race_process import race_main

        self._process = self._context.Process(
            target=race_main, args=(self.settings.to_dict(), self._events), daemon=True
        )
        self._process.start()

    def poll(self, max_events: int = 500) -> list[Event]:
        out = drain(self._events, max_events)
        if not out and self._process is not None and not self._process.is_alive() and not self._reported_exit:
            self._reported_exit = True  # a race that died without a word is still reported
            code = self._process.exitcode
            if code not in (0, 1, 2, None):  # 1 and 2: race_main said why itself
                out.append(ErrorEvent(0, f"the race's process exited with code {code}", fatal=True))
            out.append(StateEvent(0, TrainerState.STOPPED.value, f"exit code {code}"))
        return out

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stop(self) -> None:
        """End the race now (its babies keep what they last saved; a lock dies with the process)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
