"""Snapshots of the main screen (also inspecting a reply) and the logs screen in a fixed state
(scripted events, a fixed clock)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from babyterm.app import BabytermApp
from babyterm.screens.logs import LogsScreen
from babyterm.widgets.attention_strip import AttentionStrip
from school.options import TrainOptions
from soul.paths import baby_paths
from tests.fake_link import FakeLink, until, write_chat, write_logs


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BABYTERM_HOME", str(tmp_path))
    monkeypatch.setenv("TZ", "UTC")  # the logs show local times
    time.tzset()
    yield tmp_path
    monkeypatch.undo()
    time.tzset()


def main_app(home: Path) -> tuple[BabytermApp, FakeLink]:
    write_chat(baby_paths("baby"))
    link = FakeLink(auto=False)
    return BabytermApp(TrainOptions(), link=link), link


def learned(link: FakeLink) -> Any:
    """60 steps of learning and one chat, streamed in and finished."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BabytermApp)
        await until(pilot, lambda: link.started == 1)  # the trainer says hello before it steps
        link.advance(60)
        await until(pilot, lambda: app.main_screen.query_one("#loss-plot").train)
        app.main_screen.chat.ask("what is a [list]?")
        await until(pilot, lambda: app.main_screen.chat.in_flight is None)
        await pilot.pause()

    return run_before


def test_main_screen(home: Path, snap_compare: Any) -> None:
    app, link = main_app(home)
    assert snap_compare(app, run_before=learned(link), terminal_size=(120, 36))


def test_main_screen_narrow(home: Path, snap_compare: Any) -> None:
    app, link = main_app(home)
    assert snap_compare(app, run_before=learned(link), terminal_size=(80, 24))


def test_chat_inspect_mode(home: Path, snap_compare: Any) -> None:
    """A reply to a marked word, its second token selected, the inspector and layer 1's attention."""
    app, link = main_app(home)

    async def run_before(pilot: Pilot[None]) -> None:
        assert isinstance(pilot.app, BabytermApp)
        await until(pilot, lambda: link.started == 1)
        chat = pilot.app.main_screen.chat
        link.advance(60)
        chat.ask("what is a *[list]*?")
        await until(pilot, lambda: chat.in_flight is None)
        await pilot.press("k", "i", "right")
        strip = chat.query_one(AttentionStrip)
        await until(pilot, lambda: strip.event is not None and strip.event.index == 1)
        await pilot.press("right_square_bracket")
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=(120, 36))


def test_logs_screen(home: Path, snap_compare: Any) -> None:
    write_logs(home)
    app, _ = main_app(home)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("l")
        await until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
        await pilot.app.workers.wait_for_complete()
        await until(pilot, lambda: pilot.app.screen.query_one("#events").row_count > 0)
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=(120, 36))


def test_xray_screen(home: Path, snap_compare: Any) -> None:
    """The x-ray of typed text through a tiny seeded transformer, on layer 1's second head."""
    app, link = main_app(home)

    async def run_before(pilot: Pilot[None]) -> None:
        from babyterm.screens.xray import XRayScreen

        assert isinstance(pilot.app, BabytermApp)
        await until(pilot, lambda: link.started == 1)
        link.advance(60)
        pilot.app.main_screen.query_one("#chat-input").value = "the cat sat on the mat"
        await pilot.press("x")
        await until(
            pilot, lambda: isinstance(pilot.app.screen, XRayScreen) and pilot.app.screen.shot is not None
        )
        await pilot.press("tab", "tab", "tab", "down", "right_square_bracket", "left", "left")
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=(120, 36))
