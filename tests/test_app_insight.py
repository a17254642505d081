"""The chat's insight, driven by Pilot: sampling /commands, confidence colours, the token inspector,
the attention strip and talking to a milestone, against the scripted trainer."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.style import Style
from textual.widgets import Input

from babyterm.app import BabytermApp
from babyterm.chat_settings import ChatSettings
from babyterm.widgets.attention_strip import AttentionStrip
from babyterm.widgets.chat import ChatMessage, ChatPane
from babyterm.widgets.chat_message import HIGH, LOW
from babyterm.widgets.inspect_panel import InspectPanel
from babyterm.widgets.pixel import Pixel
from babyterm.widgets.settings_line import SettingsLine
from babyterm.widgets.token_inspector import TokenInspector
from school.commands import Attend
from school.events import InsightEvent
from school.options import TrainOptions
from soul.milestones import milestone_name
from soul.paths import baby_paths
from tests.fake_insight import PROBS
from tests.fake_link import FakeLink, until, write_chat

SIZE = (120, 36)
DEFAULTS = ChatSettings().command_fields()


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every notification the app shows, as (severity, message)."""
    seen: list[tuple[str, str]] = []

    def notify(self: BabytermApp, message: str, **kw: Any) -> None:
        seen.append((kw.get("severity", "information"), message))

    monkeypatch.setattr(BabytermApp, "notify", notify)
    return seen


def pane(app: BabytermApp) -> ChatPane:
    return app.main_screen.query_one(ChatPane)


def replies(app: BabytermApp) -> list[ChatMessage]:
    return [m for m in app.main_screen.query(ChatMessage) if m.role == "baby"]


async def type_in(pilot: Pilot[Any], *lines: str) -> None:
    """Submit each line in the chat input (what Enter does there)."""
    field = pilot.app.main_screen.query_one("#chat-input", Input)
    field.focus()
    for line in lines:
        field.value = line
        await field.action_submit()
        await pilot.pause()


async def ask_and_wait(pilot: Pilot[Any], text: str, link: FakeLink) -> dict[str, Any]:
    """Send `text`, wait for the whole reply; the chat command that went out."""
    await type_in(pilot, text)
    sent = link.commands("chat")[-1]
    await until(pilot, lambda: pilot.app.main_screen.chat.replies[sent.id].tokens != [])
    return sent


def spans(message: ChatMessage) -> list[Style]:
    return [span.style for span in message.content.spans if isinstance(span.style, Style)]


async def test_each_command_changes_the_next_chat(notes: list) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        await type_in(pilot, "hi")
        assert {k: getattr(link.commands("chat")[-1], k) for k in DEFAULTS} == DEFAULTS
        cases = [  # two commands, then a chat that must carry both
            (("/temp 0.7", "temperature", 0.7), ("/topk 0", "top_k", 0)),
            (("/topp 0.9", "top_p", 0.9), ("/rep 1.2", "repetition_penalty", 1.2)),
            (("/max 200", "max_tokens", 200), ("/seed 42", "seed", 42)),
            (("/topp off", "top_p", None), ("/seed off", "seed", None)),
            (("/minp 0.05", "min_p", 0.05), ("/dynatemp 0.5 2", "dynatemp_exponent", 2.0)),
            (("/dynatemp 0.25", "dynatemp_range", 0.25), ("/dynatemp 0.25", "dynatemp_exponent", 1.0)),
            (("/minp off", "min_p", None), ("/dynatemp off", "dynatemp_range", 0.0)),
            (("/emph 3", "emphasis", 3.0), ("/temp 0", "temperature", 0.0)),
        ]
        for pair in cases:
            await type_in(pilot, pair[0][0], pair[1][0], "again")
            sent = link.commands("chat")[-1]
            assert [getattr(sent, key) for _, key, _ in pair] == [value for _, _, value in pair], pair
        line = str(pilot.app.main_screen.query_one(SettingsLine).content)
        assert line == "greedy · rep 1.2 · max 200 · emph ×3"
        await type_in(pilot, "/reset", "once more")
        assert {k: getattr(link.commands("chat")[-1], k) for k in DEFAULTS} == DEFAULTS
        assert not [n for n in notes if n[0] == "warning"]


async def test_bad_values_give_a_notice_and_change_nothing(notes: list) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: link.started == 1)
        bad = ["/temp -1", "/temp warm", "/temp", "/topk 2.5", "/topp 1.5", "/rep 0", "/max 0", "/seed x"]
        bad += ["/emph 0", "/emph nan", "/bogus 3", "/step 1000", "/correct"]
        bad += ["/minp 2", "/dynatemp", "/dynatemp 1 2 3", "/dynatemp 0.5 0", "/dynatemp -1"]
        await type_in(pilot, *bad, "hi")
        assert [n[0] for n in notes] == ["warning"] * len(bad)
        assert all("\n" not in n[1] for n in notes)
        assert "temperature must be a number from 0 to 5, not '-1'" in notes[0][1]
        assert "/help" in notes[10][1] and "no milestone at step 1,000 (milestones: none yet)" in notes[11][1]
        (sent,) = link.commands("chat")
        assert {k: getattr(sent, k) for k in DEFAULTS} == DEFAULTS


async def test_help_lists_the_commands_with_their_values() -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await type_in(pilot, "/temp 0.5", "/seed 7", "/help")
        await pilot.pause()
        (note,) = [m for m in pilot.app.main_screen.query(ChatMessage) if m.role == "note"]
        text = str(note.content)
        shown = ("/temp 0.5", "/topk 40", "/topp off", "/rep 1", "/max 120", "/seed 7", "/emph 2")
        for line in (*shown, "/minp off", "/dynatemp off"):
            assert line in text
        for command in ("/conf", "/step", "/steps", "/live", "/inspect", "/correct"):
            assert command in text
        await pilot.press("escape", "question_mark")  # the help screen has the keys and commands too
        await pilot.pause()
        text = str(pilot.app.screen.query_one("#help-keys").content)
        for row in ("k ", "i ", "←, h", "[ ", "{, comma", "/temp 0.8", "/step 1000", "/emph 3"):
            assert row in text
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert {"Confidence colours", "Inspect a reply"} <= titles


async def test_confidence_colours_replies_that_have_token_data() -> None:
    write_chat(baby_paths("baby"))  # a history reply: no token data, always plain
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        app = pilot.app
        await ask_and_wait(pilot, "hi", link)
        old, new = replies(app)
        assert spans(new) == [] and spans(old) == []
        assert str(old.content).startswith("baby · live step 10\n")  # the weights that answered
        assert str(new.content).startswith("baby · live step 0\n")
        await pilot.press("escape", "k")  # leave the input; k is the app's key then
        assert pane(app).confidence and "confidence" in pane(app).border_subtitle
        colours = [s.foreground for s in spans(new)]
        assert len(colours) == len(link.reply)
        assert colours[PROBS.index(0.92)] == HIGH and colours[PROBS.index(0.07)] == LOW
        assert spans(new)[PROBS.index(0.07)].dim and spans(old) == []
        assert "Hello [world] ok" in str(new.content) and "\x1b" not in str(new.content)
        await type_in(pilot, "/conf")
        assert not pane(app).confidence and spans(new) == []


async def test_inspect_shows_alternatives_and_what_a_token_looked_at(notes: list) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        app, chat = pilot.app, pane(pilot.app)
        await pilot.press("i")
        assert notes[-1][0] == "warning" and chat.inspector.selected is None  # nothing to inspect yet
        first = await ask_and_wait(pilot, "the *raven* flew", link)
        second = await ask_and_wait(pilot, "and then?", link)
        await pilot.press("escape", "i", "right")
        assert chat.inspector.selected == (second.id, 1) and chat.has_class("-inspecting")
        assert isinstance(app.focused, InspectPanel)
        reply = chat.replies[second.id]
        assert [s.reverse for s in spans(reply)] == [True]  # the selected token, and only it
        inspector = chat.query_one(TokenInspector)
        shown = str(inspector.content)
        token = reply.tokens[1]
        assert inspector.border_title == "token 2 of 4" and f"p {token['prob']:.1%}" in shown
        for _, prob, _ in token["top"]:
            assert f"{prob:6.1%}" in shown
        assert shown.count("\n") == 5  # the token with p and margin, five alternatives
        wanted = Attend(id=second.id, index=1)
        await until(pilot, lambda: link.commands("attend")[-1:] == [wanted])
        assert len(link.commands("attend")) <= 2  # debounced: at most the one it rested on before
        strip = chat.query_one(AttentionStrip)
        await until(pilot, lambda: strip.event is not None)
        assert strip.event.index == 1 and strip.weights() == strip.event.mean
        styles = [span.style for span in strip.content.spans if isinstance(span.style, Style)]
        assert len({s.background for s in styles if s.background is not None}) > 1  # shaded by weight
        assert strip.border_title == "looked at · layer avg · head avg"
        event = strip.event
        await pilot.press("right_square_bracket")
        assert strip.border_title == "looked at · layer 1/2 · head avg"
        layer0 = [sum(col) / 4 for col in zip(*event.layers[0], strict=True)]
        assert strip.weights() == pytest.approx(layer0)
        await pilot.press("right_curly_bracket")
        assert strip.border_title.endswith("layer 1/2 · head 1/4") and strip.weights() == event.layers[0][0]
        await pilot.press("left_square_bracket", "full_stop")
        assert strip.border_title.endswith("layer avg · head 2/4")
        # a late answer about a token the user has left is kept, not shown
        link.emit(InsightEvent(0, second.id, 0, ["x"], [1.0], [1.0]))
        await pilot.pause(0.15)
        assert strip.event.index == 1
        await pilot.press("up")  # the earlier reply, its marked word underlined in the strip
        assert chat.inspector.selected == (first.id, 1)
        await until(pilot, lambda: strip.event is not None and strip.event.reply_id == first.id)
        assert "boost ×2 on raven" in str(strip.content)
        underlined = [s for s in strip.content.spans if isinstance(s.style, Style) and s.style.underline]
        assert [str(strip.content)[s.start : s.end] for s in underlined] == [" raven"]
        await pilot.press("left", "left")
        assert chat.inspector.selected == (first.id, 0)
        await pilot.press("escape")
        assert chat.inspector.selected is None and not chat.has_class("-inspecting") and app.focused is None
        assert spans(chat.replies[first.id]) == []


async def test_babyllm_shows_windows_and_gates(notes: list) -> None:
    link = FakeLink(auto=False, brain="babyllm")
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        await ask_and_wait(pilot, "hi", link)
        await type_in(pilot, "/inspect")
        strip = pane(pilot.app).query_one(AttentionStrip)
        await until(pilot, lambda: strip.event is not None)
        text = str(strip.content)
        assert strip.border_title == "babyllm · window reach" and strip.weights() == strip.event.mean
        assert "size:mix 2.0:50% 4.5:30% 9.2:20%" in text and "memory gates 0.41 0.77" in text
        await pilot.press("right_square_bracket")
        assert notes[-1] == ("warning", "babyllm reads through windows, not heads")


@pytest.mark.parametrize("size,hides", [((80, 24), True), (SIZE, False)])
async def test_a_narrow_screen_gives_the_pixels_room_to_the_inspector(size, hides: bool) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=size) as pilot:
        await ask_and_wait(pilot, "hi", link)
        pixel = pilot.app.main_screen.query_one(Pixel)
        assert pixel.display
        await type_in(pilot, "/inspect")
        await until(pilot, lambda: pane(pilot.app).has_class("-inspecting"))
        assert pixel.display is not hides
        await pilot.press("escape")
        await until(pilot, lambda: not pane(pilot.app).has_class("-inspecting"))
        assert pixel.display


async def test_talking_to_a_milestone_and_back(notes: list) -> None:
    paths = baby_paths("baby")
    paths.milestones.mkdir(parents=True)
    for step in (100, 1000):
        (paths.milestones / milestone_name(step)).touch()
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=SIZE) as pilot:
        app, chat = pilot.app, pane(pilot.app)
        assert chat.border_title == "chat · live"
        await type_in(pilot, "/steps")
        await pilot.pause()
        assert "milestones: 100, 1,000" in str(app.main_screen.query(ChatMessage).last().content)
        await type_in(pilot, "/step 1000")
        assert chat.border_title == "chat · step 1,000"
        sent = await ask_and_wait(pilot, "who are you?", link)
        assert sent.weights == 1000
        assert "baby · milestone step 1000" in str(chat.replies[sent.id].content)
        await type_in(pilot, "/step 500")
        assert notes[-1] == ("warning", "no milestone at step 500 (milestones: 100, 1,000)")
        assert chat.border_title == "chat · step 1,000"
        await type_in(pilot, "/live")
        assert chat.border_title == "chat · live"
        sent = await ask_and_wait(pilot, "and now?", link)
        assert sent.weights == "live"
        assert "baby · live step" in str(chat.replies[sent.id].content)
