"""The x-ray screen and steering in the app, against a scripted trainer that answers with real x-rays."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from babyterm.app import BabytermApp
from babyterm.screens.xray import XRayScreen
from babyterm.widgets.xray_stage import XRayStage
from babyterm.widgets.xray_stages import XRayStages
from babyterm.widgets.xray_tokens import XRayTokens
from school.commands import Steer, Teach, XRayRequest
from school.events import TaughtEvent
from school.options import TrainOptions
from school.xray import SENTENCES, STAGES
from tests.fake_link import FakeLink, until

SIZE = (120, 36)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BABYTERM_HOME", str(tmp_path))
    return tmp_path


def text_of(widget) -> str:
    return str(widget.render())


async def open_xray(pilot, link: FakeLink, typed: str) -> XRayScreen:
    app = pilot.app
    await until(pilot, lambda: link.started == 1)
    app.main_screen.query_one("#chat-input", Input).value = typed
    await pilot.press("x")
    await until(pilot, lambda: isinstance(app.screen, XRayScreen) and app.screen.shot is not None)
    return app.screen


@pytest.mark.parametrize("brain", ["transformer", "babyllm"])
async def test_keys_walk_every_stage(home: Path, brain: str) -> None:
    link = FakeLink(auto=False, brain=brain)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        screen = await open_xray(pilot, link, "the cat sat on the mat")
        (asked,) = link.commands("xray")
        assert isinstance(asked, XRayRequest) and asked.text == "the cat sat on the mat"
        n = len(screen.shot["tokens"])
        assert screen.token == n - 1  # it opens on the last token
        assert screen.stages == list(STAGES[brain])
        for stage in STAGES[brain]:  # Tab walks every stage, each drawn with its sentence
            body = text_of(screen.query_one(XRayStage))
            assert SENTENCES[stage] in body and stage in screen.query_one(XRayStage).border_title
            assert f" {stage} " in text_of(screen.query_one(XRayStages))
            await pilot.press("tab")
        assert screen.stage == 0
        await pilot.press("shift+tab")
        assert screen.stage == len(STAGES[brain]) - 1  # learning
        assert "layers.0" in text_of(screen.query_one(XRayStage))
        await pilot.press("left", "left")
        assert screen.token == n - 3
        assert f"token {n - 2} of {n}" in screen.query_one(XRayTokens).border_title
        await pilot.press("right", "right", "right")
        assert screen.token == n - 1  # stops at the end
        if brain == "transformer":
            screen.stage = STAGES[brain].index("attention")
            await pilot.press("down", "right_square_bracket")
            assert (screen.layer, screen.head) == (1, 1)
            body = text_of(screen.query_one(XRayStage))
            assert "layer 1 head 1" in body
            await pilot.press("down")
            assert screen.layer == 0  # wraps round
        else:
            screen.stage = STAGES[brain].index("memory")
            await pilot.press("down", "right_square_bracket")
            assert (screen.layer, screen.head) == (0, 0)  # babyllm has no stack of heads
            assert "memory 1" in text_of(screen.query_one(XRayStage))
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, XRayScreen)


async def test_xray_of_the_last_reply_and_a_refusal(home: Path) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        await pilot.press("x")  # nothing typed, nothing said yet
        assert not isinstance(pilot.app.screen, XRayScreen) and not link.commands("xray")
        chat = pilot.app.main_screen.chat
        chat.ask("what is a list")
        await until(pilot, lambda: chat.in_flight is None)
        await pilot.press("x")
        await until(pilot, lambda: bool(link.commands("xray")))
        assert link.commands("xray")[0].text.startswith("what is a list\n")


async def test_steer_and_teach_from_inspect_mode(home: Path) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        chat = pilot.app.main_screen.chat
        reply_id = chat.ask("what is a list")
        await until(pilot, lambda: chat.in_flight is None)
        await pilot.press("i", "right", "2")
        (steer,) = link.commands("steer")
        alt = chat.replies[reply_id].tokens[1]["top"][1][0]
        assert isinstance(steer, Steer) and (steer.reply_id, steer.index, steer.token_id) == (
            reply_id,
            1,
            alt,
        )
        await pilot.press("t")  # the reply is not steered: nothing to teach
        assert not link.commands("teach")
        link.emit(TaughtEvent(3, "s1", alt, "xy", 0.1, 0.4, 10))
        await until(pilot, lambda: bool(chat.taught))
        screen = await open_xray(pilot, link, "the cat")
        screen.stage = screen.stages.index("logits")
        await pilot.pause()
        assert 'taught "xy": chance 0.100 when taught, 0.400 after 10 training steps' in text_of(
            screen.query_one(XRayStage)
        )


async def test_watch_mode_refuses_teaching(home: Path) -> None:
    link = FakeLink(auto=False)
    link.watch = True
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        chat = pilot.app.main_screen.chat
        reply_id = chat.ask("what is a list")
        await until(pilot, lambda: chat.in_flight is None)
        chat.replies[reply_id].tokens[0]["steered"] = True
        await pilot.press("i", "t")
        assert not link.commands("teach")
        assert not any(isinstance(c, Teach) for c in link.sent)
