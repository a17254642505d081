"""The app driven by Pilot against a scripted trainer: every key, chat, pause, errors, history and logs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select

from babyterm.app import BabytermApp
from babyterm.screens.help import HelpScreen
from babyterm.screens.logs import LogsScreen
from babyterm.text import clean, count, duration, one_line
from babyterm.widgets.chat import ChatMessage, ChatPane
from babyterm.widgets.loss_plot import LossPlot
from babyterm.widgets.loss_stream import LossStream
from babyterm.widgets.scribe import ScribeFeed
from babyterm.widgets.startup import StartupProgress
from babyterm.widgets.status_bar import StatusBar
from school.commands import Correct
from school.counsellor import RunLog
from school.events import ProgressEvent, ScribeEvent, StateEvent
from school.options import MAX_PROMPT_CHARS, TrainOptions
from soul.jsonl import append_jsonl
from soul.paths import baby_paths
from tests.fake_link import FakeLink, until, write_chat, write_logs

SIZE = (120, 36)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BABYTERM_HOME", str(tmp_path))
    return tmp_path


def make_app(link: FakeLink, factory: Callable[[], FakeLink] | None = None) -> BabytermApp:
    return BabytermApp(TrainOptions(), link=link, link_factory=factory)


def stream_text(app: BabytermApp) -> str:
    return "\n".join(strip.text for strip in app.main_screen.query_one(LossStream).lines)


def replies(app: BabytermApp) -> list[ChatMessage]:
    return [m for m in app.main_screen.query(ChatMessage) if m.role == "baby"]


async def test_status_shows_hello_and_steps(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        link.advance(12)
        await until(pilot, lambda: pilot.app.main_screen.query_one(StatusBar).last_step is not None)
        status = pilot.app.main_screen.query_one(StatusBar)
        assert status.hello["brain"] == "transformer"
        text = " ".join(str(label.content) for label in status.query("Label"))
        assert "1.31M" in text and "step 12" in text and "24.6k tokens" in text and "training" in text
        assert "12 ┤" not in text  # the plot's axis belongs to the plot
        assert pilot.app.main_screen.query_one(LossPlot).train


async def test_pause_stops_steps_and_resume_restarts_them(home: Path) -> None:
    link = FakeLink()  # a step on every poll unless paused
    async with make_app(link).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        await until(pilot, lambda: link.step >= 3)
        app.action_toggle_pause()
        assert app.trainer_state == "pausing…"  # shown at once, before the trainer answers
        await until(pilot, lambda: app.trainer_state == "paused")
        paused_at = link.step
        await pilot.pause(0.2)
        assert link.step == paused_at  # no steps while paused
        await pilot.press("p")
        assert link.commands("resume")
        await until(pilot, lambda: app.trainer_state == "training" and link.step > paused_at + 2)
        await pilot.press("space")
        await until(pilot, lambda: app.trainer_state == "paused")
        assert len(link.commands("pause")) == 2


async def test_save_key_sends_save_and_logs_it(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert link.commands("save")
        await until(pilot, lambda: "manual save" in stream_text(pilot.app))


async def test_chat_streams_reply_and_corrects(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("c")
        assert isinstance(app.focused, Input)
        await pilot.press("h", "i", "enter")
        (sent,) = link.commands("chat")
        assert sent.text == "hi" and sent.max_tokens == 120
        await until(pilot, lambda: bool(replies(app)) and replies(app)[-1].done)
        reply = replies(app)[-1]
        assert reply.reply_id == sent.id
        assert clean(reply.text) == "Hello [world] ok"  # brackets kept, the escape sequence gone
        assert "Hello [world] ok" in str(reply.content)
        app.focused.value = "/correct the cat sat"
        await pilot.press("enter")
        assert link.commands("correct") == [Correct(id=sent.id, text="the cat sat")]
        assert any(m.role == "correction" for m in app.main_screen.query(ChatMessage))


async def test_a_long_message_is_read_from_its_end_and_says_so(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("c")
        app.focused.value = "a" * 50_000 + " the end"
        await pilot.press("enter")
        (sent,) = link.commands("chat")
        assert len(sent.text) == MAX_PROMPT_CHARS and sent.text.endswith(" the end")
        (mine,) = [m for m in app.main_screen.query(ChatMessage) if m.role == "you"]
        assert mine.text == "…" + sent.text
        assert any("reads only its last" in n.message for n in app._notifications)


async def test_escape_cancels_reply_then_leaves_chat(home: Path) -> None:
    link = FakeLink(auto=False, reply=tuple("a slow answer " * 2))
    async with make_app(link).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("tab", "h", "enter")
        await until(pilot, lambda: bool(replies(app)) and bool(replies(app)[-1].text))
        await pilot.press("escape")
        (cancel,) = link.commands("chat_cancel")
        assert cancel.id == link.commands("chat")[0].id
        reply = replies(app)[-1]
        assert reply.done and reply.note == "stopped"
        assert app.main_screen.query_one(ChatPane).in_flight is None
        await pilot.press("escape")
        assert app.focused is None  # the app's keys work again
        await pilot.press("s")
        assert link.commands("save")


async def test_q_saves_and_quits(home: Path) -> None:
    link = FakeLink(auto=False)
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: link.stopped and not app.is_running)
    assert app.trainer_state in ("saving…", "stopped")


async def test_ctrl_c_quits_even_from_the_chat(home: Path) -> None:
    link = FakeLink(auto=False)
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "x", "ctrl+c")
        await until(pilot, lambda: link.stopped and not app.is_running)


async def test_fatal_error_is_shown_and_restart_makes_a_new_link(home: Path) -> None:
    first, second = FakeLink(auto=False), FakeLink(auto=False)
    made: list[FakeLink] = []

    def factory() -> FakeLink:
        made.append(second)
        return second

    app = make_app(first, factory)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        first.die("CUDA [out] of memory")
        await until(pilot, lambda: app.trainer_state == "error")
        assert "CUDA [out] of memory" in stream_text(app)
        assert "error" in str(app.main_screen.query_one("#status-state").content)
        assert any("CUDA [out] of memory" in n for n in notes)
        await pilot.press("s")  # commands to a dead trainer are refused, not sent
        assert not first.commands("save")
        app.main_screen.chat.ask("are you there?")
        await pilot.pause()
        assert not first.commands("chat") and replies(app)[-1].note == "the trainer is not running"
        await pilot.press("r")
        await until(pilot, lambda: app.link is second and app.trainer_state == "training")
        assert made == [second] and second.started == 1 and first.stopped


async def test_a_silent_death_is_noticed(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        link.alive = False
        await until(pilot, lambda: pilot.app.trainer_state == "error")
        assert "stopped without a word" in stream_text(pilot.app)


async def test_chat_history_shows_at_launch(home: Path) -> None:
    write_chat(baby_paths("baby"))
    async with make_app(FakeLink(auto=False)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        messages = list(pilot.app.main_screen.query(ChatMessage))
        assert [(m.role, m.text) for m in messages] == [("you", "hello baby"), ("baby", "the [cat]\x1b[2J")]
        assert "the [cat]" in str(messages[1].content) and "\x1b" not in str(messages[1].content)
        assert pilot.app.main_screen.query_one(ChatPane).last_reply == "r1"


@pytest.mark.parametrize("watching", [False, True])
async def test_relaunch_recalls_the_recent_past(home: Path, watching: bool) -> None:
    write_logs(home)  # baby ada: an older run of 30 steps, then one of 45
    paths = baby_paths("ada")
    RunLog(paths.logs, "closed-at-once").write(StateEvent(45, "training"))  # newest: no steps at all
    append_jsonl(paths.scribe, ScribeEvent(40, "perfect", "you [nailed] it", "the cat", "the cat").to_dict())
    with open(paths.scribe, "a", encoding="utf-8") as f:
        f.write('{"kind": "scribe", "step": "not a step"}\n{"kind": "scri')  # damaged: left out
    link = FakeLink(auto=False)
    link.watch = watching  # a watching app gets its past from the observer's replay instead
    app = BabytermApp(TrainOptions(baby="ada"), link=link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.main_screen
        plot, scribe = screen.query_one(LossPlot), screen.query_one(ScribeFeed)
        lines = [str(w.content) for w in scribe.query(".scribe-line")]
        if watching:
            assert not plot.train and not lines and "step 45" not in stream_text(app)
            return
        # read back through the stepless run to the two before (fake runs both count from 1)
        assert [s for s, _ in plot.train] == [*range(1, 31), *range(1, 46)]
        assert "45" in stream_text(app)
        assert len(lines) == 1 and "you [nailed] it" in lines[0]
        assert screen.query_one(StatusBar).last_step is None  # the trainer has not spoken yet


async def test_first_launch_progress_then_training(home: Path) -> None:
    link = FakeLink(auto=False)
    async with make_app(link).run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        link.emit(ProgressEvent(0, "training the tokenizer", 0.4, "12 MB"))
        progress = pilot.app.main_screen.query_one(StartupProgress)
        await until(pilot, lambda: progress.has_class("-active"))
        assert "training the tokenizer" in str(progress.query_one("#startup-task").content)
        link.emit(StateEvent(0, "training"))
        await until(pilot, lambda: not progress.has_class("-active"))


async def test_every_key_is_in_the_footer_the_palette_and_help(home: Path) -> None:
    async with make_app(FakeLink(auto=False)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = pilot.app.screen.active_bindings.values()
        actions = {b.binding.action for b in shown if b.binding.show}
        assert {"toggle_pause", "save", "focus_chat", "logs", "help", "restart", "quit"} <= actions
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert {
            "Pause / resume training",
            "Save now",
            "Chat",
            "Logs",
            "Help",
            "Restart trainer",
            "Quit",
        } <= titles
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)
        text = str(pilot.app.screen.query_one("#help-keys").content)
        for keys in ("Space, p", "s ", "c, Tab", "l ", "?", "r ", "q, Ctrl+C", "Esc", "/correct", "n "):
            assert keys in text
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is pilot.app.main_screen
        await pilot.press("l")
        await pilot.app.action_focus_chat()  # the palette's "Chat", from the logs screen
        await pilot.pause()
        assert pilot.app.screen is pilot.app.main_screen and isinstance(pilot.app.focused, Input)


async def test_logs_screen_lists_runs_and_filters(home: Path) -> None:
    write_logs(home)
    async with make_app(FakeLink(auto=False)).run_test(size=SIZE) as pilot:
        app = pilot.app
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        runs = screen.query_one("#runs", DataTable)
        assert runs.row_count == 3
        await app.workers.wait_for_complete()
        await until(
            pilot, lambda: screen.current_run is not None and screen.query_one("#events").row_count > 0
        )
        newest = screen.current_run
        assert newest is not None and (newest.baby, newest.summary.run_id) == ("bob", "b1")
        events = screen.query_one("#events", DataTable)
        assert events.cursor_row == events.row_count - 1  # at the newest event
        screen.query_one("#kind-filter", Select).value = "eval"
        await until(pilot, lambda: events.row_count == 2)
        assert {str(events.get_row_at(i)[2]) for i in range(events.row_count)} == {"eval"}
        screen.query_one("#kind-filter", Select).value = Select.NULL
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        app.focused.value = "slow"
        await until(pilot, lambda: events.row_count == 1)
        assert "bob disk is [slow]" in str(events.get_row_at(0)[3])
        screen.query_one("#text-filter", Input).value = ""
        runs.focus()
        await pilot.press("down")
        await until(
            pilot, lambda: screen.current_run is not None and screen.current_run.summary.run_id != "b1"
        )
        plot = screen.query_one(LossPlot)
        await until(pilot, lambda: len(plot.train) in (30, 45))
        await pilot.press("n")
        await until(
            pilot, lambda: screen.current_run is not None and screen.current_run.summary.run_id == "b1"
        )
        await pilot.press("l")
        await pilot.pause()
        assert app.screen is app.main_screen


async def test_the_logs_screen_shows_one_event_per_chat_reply(home: Path) -> None:
    """A log from before pieces were left out: three pieces and the final event of one reply."""
    paths = baby_paths("baby")
    paths.config.parent.mkdir(parents=True, exist_ok=True)
    paths.config.write_text("{}")
    log = paths.logs / "20251123-090000-chat.jsonl"
    pieces = [{"kind": "chat", "reply_id": "r1abcdef", "text": t, "final": False} for t in ("a", "b")]
    final = {"kind": "chat", "reply_id": "r1abcdef", "text": "the cat", "final": True, "prompt": "hi"}
    for i, record in enumerate([*pieces, final]):
        append_jsonl(log, {"time": 1_763_888_400.0 + i, "run": "r", "step": 7, **record})
    async with make_app(FakeLink(auto=False)).run_test(size=SIZE) as pilot:
        await pilot.press("l")
        await pilot.pause()
        screen = pilot.app.screen
        events = screen.query_one("#events", DataTable)
        await until(pilot, lambda: events.row_count > 0)
        assert events.row_count == 1
        assert str(events.get_row_at(0)[3]) == "r1abcd  “hi” → the cat"


def test_the_app_process_stays_free_of_torch() -> None:
    code = "import sys, babyterm.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    # and `babyterm` itself, up to opening the app (its main once imported torch for an error class)
    code = (
        "import sys, babyterm.cli as cli; "
        "cli.cmd_app = lambda args, watch=False: sys.exit(int('torch' in sys.modules)); cli.main([])"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_text_helpers() -> None:
    assert clean("a\x1b[31mred\x1b[0m\x07 [b]\tc\n") == "ared [b]    c\n"
    assert one_line("x\n  y " * 3, 8) == "x y x y…"
    assert (count(999), count(1234), count(122_880), count(2_100_000)) == ("999", "1.23k", "123k", "2.10M")
    assert (duration(8), duration(724), duration(11_220)) == ("8s", "12m 04s", "3h 07m")


async def test_a_plateau_is_said_in_plain_words_and_step_best_talks_to_the_best_self(home: Path) -> None:
    import torch  # this test's own process only: the app's stays free of it

    from babyterm.chat_settings import SettingError
    from school.events import PlateauEvent, SaveEvent
    from soul.best_self import save_best

    link = FakeLink(auto=False)
    app = make_app(link)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        link.advance(5)
        link.emit(
            SaveEvent(5, "best.safetensors", "best", 0.01),
            PlateauEvent(6, best_step=5, best_bpb=1.234, evals=4, lr_scale=0.5, weight_decay=0.15),
        )
        await until(pilot, lambda: "plateau" in stream_text(app))
        text = stream_text(app)
        assert "kept as its best self" in text and "learned what it can from this text" in text
        assert any("Give it more writing" in n for n in notes)
        assert app.main_screen.query_one(LossStream).calligraphist.memorising  # no more celebrating
        chat = app.main_screen.chat
        with pytest.raises(SettingError, match="no best self yet"):  # none on disk yet: one line
            chat.run_command("/step best")
        assert chat.settings.weights is None
        save_best(baby_paths("baby").milestones, 5, {"w": torch.zeros(1)}, 1.234, "v")
        chat.run_command("/step best")
        assert chat.settings.weights == "best" and "best self" in chat.border_title
        assert chat.settings.command_fields()["weights"] == "best"
