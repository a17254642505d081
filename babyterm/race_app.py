"""`babyterm race --app`: the race view as an app of its own (no baby of yours trains meanwhile)."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.screen import Screen

from babyterm.link import prepare_multiprocessing
from babyterm.race_link import ProcessRaceLink, RaceLink, RaceSettings
from babyterm.screens.race import RaceScreen
from school.rungs import DEFAULT_BRAINS, check_brains


class RaceApp(App[None]):
    CSS_PATH = "babyterm.tcss"
    TITLE = "babyterm race"

    def __init__(self, link: RaceLink) -> None:
        super().__init__()
        self.link = link
        self.theme = "tokyo-night"

    def get_default_screen(self) -> Screen[Any]:
        return RaceScreen(self.link)


def run_race_app(
    library: str | None, minutes: float, brains: str | None, home: str | None, **options: Any
) -> int:
    """What `babyterm race --app` runs; SoulError (one line) for unknown brains, before the app opens."""
    names = check_brains((brains or ",".join(DEFAULT_BRAINS)).split(","))
    prepare_multiprocessing()
    settings = RaceSettings(library, minutes, tuple(names), home, **options)
    RaceApp(ProcessRaceLink(settings)).run()
    return 0
