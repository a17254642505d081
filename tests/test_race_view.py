"""The race view, driven by Pilot against a fake race link: curves drawn, answers side by side, and
the app's race key pausing the baby's training first and resuming it after."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from babyterm.app import BabytermApp
from babyterm.race_app import RaceApp
from babyterm.race_link import RaceSettings
from babyterm.screens.race import RaceScreen
from babyterm.widgets.race_answers import RaceAnswers, RacerCard
from babyterm.widgets.race_plot import MARKS, RacePlot
from school.events import ErrorEvent, Event, RaceAnswerEvent, RacePointEvent, StateEvent
from school.options import TrainOptions
from school.rungs import RUNG_NOTES
from tests.fake_link import FakeLink, until

SIZE = (120, 36)
BRAINS = ("mlp", "attention")


class FakeRaceLink:
    """A RaceLink whose race lives in the test: it sends what the test queues."""

    def __init__(self, settings: RaceSettings) -> None:
        self.settings = settings
        self.queue: deque[Event] = deque()
        self.started = 0
        self.alive = False
        self.stopped = 0

    def emit(self, *events: Event) -> None:
        self.queue.extend(events)

    def start(self) -> None:
        self.started += 1
        self.alive = True

    def poll(self, max_events: int = 500) -> list[Event]:
        out = []
        while self.queue and len(out) < max_events:
            out.append(self.queue.popleft())
        return out

    def is_alive(self) -> bool:
        return self.alive

    def stop(self) -> None:
        self.stopped += 1
        self.alive = False


def race_events() -> list[Event]:
    """Two brains, three evaluations each, then their answers and the end."""
    points = [
        RacePointEvent(0, "mlp", 0.0, 8.0),
        RacePointEvent(0, "attention", 0.0, 8.1),
        RacePointEvent(40, "mlp", 30.0, 5.5),
        RacePointEvent(25, "attention", 30.2, 4.0),
        RacePointEvent(80, "mlp", 60.0, 5.0),
        RacePointEvent(50, "attention", 60.1, 3.0),
    ]
    answers = [
        RaceAnswerEvent(0, "mlp", "The", "the the [the]"),
        RaceAnswerEvent(0, "attention", "The", "The cat"),
    ]
    return [*points, *answers, StateEvent(0, "stopped")]


def settings() -> RaceSettings:
    return RaceSettings(None, 1.0, BRAINS, prompt="The")


def plot_text(screen: RaceScreen) -> str:
    plot = screen.query_one(RacePlot)
    return "\n".join(plot.render_line(y).text for y in range(plot.content_size.height))


async def fed(pilot: Pilot[Any], link: FakeRaceLink) -> RaceScreen:
    await until(pilot, lambda: link.started == 1)
    link.emit(*race_events())
    screen = pilot.app.screen
    assert isinstance(screen, RaceScreen)
    await until(pilot, lambda: screen.state == "done")
    return screen


async def test_the_view_draws_every_curve_and_the_answers_side_by_side() -> None:
    link = FakeRaceLink(settings())
    async with RaceApp(link).run_test(size=SIZE) as pilot:
        screen = await fed(pilot, link)
        plot = screen.query_one(RacePlot)
        assert plot.curves == {
            "mlp": [(0.0, 8.0), (30.0, 5.5), (60.0, 5.0)],
            "attention": [(0.0, 8.1), (30.2, 4.0), (60.1, 3.0)],
        }
        rows = plot_text(screen).splitlines()
        assert rows[0].lstrip().startswith("8.36") and rows[-2].lstrip().startswith("2.75")  # 5% margins
        assert rows[-1].split() == ["0", "s", "60", "s"]  # the time axis, in training seconds

        def ends(mark: str) -> tuple[int, int]:
            """The rows (0 = top) where the mark's curve begins and ends."""
            cols = [(row.index("│") if "│" in row else row.index("┤")) for row in rows[:-1]]
            cells = [
                (r, c - cols[r]) for r, row in enumerate(rows[:-1]) for c, ch in enumerate(row) if ch == mark
            ]
            first, last = min(cells, key=lambda rc: rc[1]), max(cells, key=lambda rc: rc[1])
            return first[0], last[0]

        (mlp_start, mlp_end), (att_start, att_end) = ends(MARKS[0]), ends(MARKS[1])
        assert att_start <= mlp_start  # attention begins a little higher (8.1 bits/byte against 8.0)
        assert att_end > mlp_end  # and ends lower (3.0 against 5.0)
        assert sum(row.count(MARKS[0]) for row in rows) > 60  # joined lines, not three dots each
        assert "mlp 5.000" in str(plot.border_subtitle) and "attention 3.000" in str(plot.border_subtitle)
        cards = list(screen.query_one(RaceAnswers).query(RacerCard))
        assert [c.brain for c in cards] == list(BRAINS)
        assert cards[0].region.y == cards[1].region.y and cards[0].region.x < cards[1].region.x
        mlp, attention = (str(c.content) for c in cards)
        assert RUNG_NOTES["mlp"] in mlp and "answers: “the the [the]”" in mlp  # model text shown as written
        assert RUNG_NOTES["attention"] in attention and "“The cat”" in attention
        assert cards[1].border_subtitle == "3.000 bits/byte · 60.1 s"
        assert "race-mlp, race-attention" in str(screen.query_one("#race-title").content)
        await pilot.press("escape")
        await pilot.pause()
    assert link.stopped == 1


async def test_a_fatal_error_is_shown_and_ends_the_race(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(RaceApp, "notify", lambda self, message, **kw: seen.append(message))
    link = FakeRaceLink(settings())
    async with RaceApp(link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        link.emit(ErrorEvent(0, "no readable text in the library", fatal=True), StateEvent(0, "stopped"))
        screen = pilot.app.screen
        assert isinstance(screen, RaceScreen)
        await until(pilot, lambda: screen.state == "error")
        await pilot.pause()
        assert "no readable text in the library" in seen
        assert "stopped by an error" in str(screen.query_one("#race-title").content)


async def test_the_race_key_pauses_training_and_resumes_it_after(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BABYTERM_HOME", str(tmp_path))
    links: list[FakeRaceLink] = []

    def factory(s: RaceSettings) -> FakeRaceLink:
        links.append(FakeRaceLink(s))
        return links[-1]

    trainer = FakeLink(auto=False)
    app = BabytermApp(TrainOptions(library="/lib.txt"), link=trainer, race_link_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: trainer.started == 1 and app.trainer_state == "training")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, RaceScreen))
        assert [c.kind for c in trainer.sent] == ["pause"]
        (race,) = links
        assert race.settings.library == "/lib.txt" and race.settings.brains == (
            "mlp",
            "attention",
            "transformer",
            "babyllm",
        )
        await until(pilot, lambda: race.started == 1)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main_screen)
        assert race.stopped == 1
        await until(pilot, lambda: [c.kind for c in trainer.sent] == ["pause", "resume"])
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Race the ladder" in titles


def test_the_race_view_snapshot(snap_compare: Any) -> None:
    link = FakeRaceLink(settings())

    async def run_before(pilot: Pilot[None]) -> None:
        await fed(pilot, link)
        await pilot.pause()

    assert snap_compare(RaceApp(link), run_before=run_before, terminal_size=SIZE)


def test_the_process_link_streams_a_real_race_and_stops_it(small_library: Path, tmp_path: Path) -> None:
    """The race in its own spawned process: its first point comes back as an event; stop ends it."""
    import time

    from babyterm.race_link import ProcessRaceLink

    race_settings = RaceSettings(
        str(small_library), 5.0, ("mlp",), str(tmp_path / "home"), threads=1, device="cpu"
    )
    link = ProcessRaceLink(race_settings)
    link.start()
    seen: list[Event] = []
    deadline = time.monotonic() + 60
    while not any(isinstance(e, RacePointEvent) for e in seen) and time.monotonic() < deadline:
        seen += link.poll()
        time.sleep(0.05)
    assert not [e for e in seen if isinstance(e, ErrorEvent) and e.fatal], seen
    point = next(e for e in seen if isinstance(e, RacePointEvent))
    assert (point.brain, point.seconds, point.step) == ("mlp", 0.0, 0) and point.val_bpb > 0
    link.stop()  # long before its five minutes are up
    assert not link.is_alive()
    deadline = time.monotonic() + 10
    while not any(isinstance(e, StateEvent) for e in seen) and time.monotonic() < deadline:
        seen += link.poll()
    assert any(isinstance(e, StateEvent) and e.state == "stopped" for e in seen)
