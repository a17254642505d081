"""Chat transcripts: the history as Markdown, from the CLI (`chat --export`) and the chat pane (/export)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Input

from babyterm.app import BabytermApp
from babyterm.cli import main
from school.options import TrainOptions
from school.transcript import exchanges, export_transcript, parse_since, render
from soul.chat_log import ChatLine, ChatLog
from soul.paths import BabyPaths, SoulError, baby_paths
from tests.fake_link import FakeLink, until

DAY = 86400.0
T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC


def write_history(paths: BabyPaths) -> None:
    """Three exchanges a day apart (the first from before reply ids), one corrected."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text("{}")
    log = ChatLog(paths.chat)
    for line in (
        ChatLine("you", "old question", 5, "live", "", T0),
        ChatLine("baby", "old answer", 5, "live (step 5)", "", T0 + 1),
        ChatLine("you", "what is `x`?", 40, "live", "r2", T0 + DAY),
        ChatLine("baby", "# not a heading ``` *x*", 40, "milestone step 20", "r2", T0 + DAY + 1),
        ChatLine("correction", "x is a name", 41, "live", "r2", T0 + DAY + 2),
        ChatLine("you", "hello", 90, "live", "r3", T0 + 2 * DAY),
        ChatLine("baby", "hello back", 90, "live (step 90)", "r3", T0 + 2 * DAY + 1),
    ):
        log.write(line)


def test_exchanges_pair_questions_replies_and_corrections(isolated_home: Path) -> None:
    paths = baby_paths("ada")
    write_history(paths)
    found = exchanges(ChatLog(paths.chat).tail(100))
    assert [(e.prompt.text, e.reply.text) for e in found] == [  # type: ignore[union-attr]
        ("old question", "old answer"),
        ("what is `x`?", "# not a heading ``` *x*"),
        ("hello", "hello back"),
    ]
    assert [len(e.corrections) for e in found] == [0, 1, 0]


def test_the_markdown_has_a_heading_and_a_section_per_exchange(isolated_home: Path) -> None:
    paths = baby_paths("ada")
    write_history(paths)
    text = render("ada", exchanges(ChatLog(paths.chat).tail(100)))
    lines = text.splitlines()
    assert lines[0] == "# Chat with ada"
    assert "3 exchanges (the whole history)" in lines[2]
    sections = [line for line in lines if line.startswith("## ")]
    assert sections == [
        "## 1. 2025-11-24 16:00 UTC · step 5",
        "## 2. 2025-11-25 16:00 UTC · step 40",
        "## 3. 2025-11-26 16:00 UTC · step 90",
    ]
    assert "**ada** (answered by milestone step 20):" in text
    assert "**Your correction** (became training text):" in text
    # model text is fenced longer than its own backticks, so it is never read as Markdown
    assert "````text\n# not a heading ``` *x*\n````" in text
    assert "```text\nwhat is `x`?\n```" in text


def test_since_takes_a_duration_or_a_date() -> None:
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("1h30m", now=10_000.0) == 10_000.0 - 5400
    assert parse_since("7d", now=DAY * 10) == DAY * 3
    assert parse_since("2025-11-25T00:00+00:00") == T0 + 8 * 3600
    for bad in ("yesterday", "", "2h x", "-3d"):
        with pytest.raises(SoulError, match="--since takes a date"):
            parse_since(bad)


def test_chat_export_writes_the_history_or_what_is_since(isolated_home: Path, tmp_path: Path, capsys) -> None:
    write_history(baby_paths("ada"))
    out = tmp_path / "chat.md"
    assert main(["chat", "--baby", "ada", "--export", str(out)]) == 0
    assert "wrote 3 exchanges with ada" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").count("\n## ") == 3
    assert main(["chat", "--baby", "ada", "--export", str(out), "--since", "2025-11-26T12:00+00:00"]) == 0
    assert "wrote 1 exchange with ada" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").count("\n## ") == 1 and "hello back" in out.read_text()
    assert main(["chat", "--baby", "ada", "--export", str(out), "--since", "0001-01-01"]) == 0  # no traceback
    assert "wrote 3 exchanges with ada" in capsys.readouterr().out
    assert "(the whole history)" in out.read_text(encoding="utf-8")
    assert list(tmp_path.glob(".chat.md.*")) == []  # no temp file left behind


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--export", "OUT", "--since", "soon"], ["--since takes a date"]),
        (["--since", "2h"], ["--since goes with --export"]),
        (["--export", "OUT", "--since", "1m"], ["no chat with 'ada' since"]),
        (["--baby", "ghost", "--export", "OUT"], ["no baby named 'ghost'"]),
        (["--export", "OUT", "hello"], ["takes no prompt"]),
    ],
)
def test_bad_exports_are_one_line_and_write_nothing(
    argv: list[str], words: list[str], isolated_home: Path, tmp_path: Path, capsys
) -> None:
    write_history(baby_paths("ada"))
    out = tmp_path / "chat.md"
    argv = [str(out) if a == "OUT" else a for a in argv]
    code = main(["chat", "--baby", "ada", *argv] if "--baby" not in argv else ["chat", *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_an_empty_history_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SoulError, match="no chat history"):
        export_transcript(tmp_path / "chat.jsonl", "ada", tmp_path / "out.md")
    assert not (tmp_path / "out.md").exists()


async def test_slash_export_in_the_chat_pane(isolated_home: Path, tmp_path: Path, monkeypatch) -> None:
    write_history(baby_paths("baby"))
    seen: list[str] = []
    monkeypatch.setattr(BabytermApp, "notify", lambda self, message, **kw: seen.append(message))
    link = FakeLink(auto=False)
    out = tmp_path / "mine.md"
    async with BabytermApp(TrainOptions(), link=link).run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: link.started == 1)
        field = pilot.app.main_screen.query_one("#chat-input", Input)
        field.focus()
        for line in (f"/export {out}", "/export", f"/export {tmp_path / 'late.md'} --since 1m"):
            field.value = line
            await field.action_submit()
            await pilot.pause()
    assert out.read_text(encoding="utf-8").startswith("# Chat with baby\n")
    assert f"wrote 3 exchanges to {out}" in seen
    assert any("/export needs a file name" in s for s in seen)
    assert any("no chat with 'baby' since" in s for s in seen) and not (tmp_path / "late.md").exists()
    assert time.time() > T0  # the fixed history is older than a minute, so --since 1m finds none
