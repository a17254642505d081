"""Replies stream as whole characters: a character made of byte-fallback tokens appears once complete.

The tokenizer is trained on ASCII text, so `…`, `é`, `日本` and emoji exist only as byte pieces. The
chat paths (the tutor's events, `babyterm watch`'s observer and `babyterm chat`) are driven with a
scripted generation of those ids through the real speaker.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

import school.speaker
from babyterm.cli import main
from brain.generate import TokenChoice
from school.chat_host import ChatHost
from school.commands import Chat
from school.events import ChatEvent, Event
from school.observer import Observer
from school.revive import SavedBaby, revive
from school.text_stream import TextStream, stream_text
from school.tokenizer import BYTE_PIECES, EOS_ID, SPECIALS, decode, encode, train_tokenizer
from soul.chat_log import ChatLog
from tests.test_tutor import make_tutor, wait_for

ASCII = "the cat sat on the mat, and the dog ate the log. " * 60
REPLY = "so stil… café 日本 🙂 ok"
ODD = ("…", "é", "日", "本", "🙂")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer([ASCII], vocab_size=300)


def is_byte(i: int) -> bool:
    return len(SPECIALS) <= i < len(SPECIALS) + len(BYTE_PIECES)


def test_the_odd_characters_are_byte_pieces(tok: Tokenizer) -> None:
    for ch in ODD:
        ids = encode(tok, "a" + ch)[-len(ch.encode()) :]
        assert all(is_byte(i) for i in ids) and decode(tok, ids) == ch, ch


def test_pieces_are_whole_characters_and_add_up_to_the_text(tok: Tokenizer) -> None:
    ids = encode(tok, REPLY)
    pieces = list(stream_text(tok, ids))
    assert "".join(pieces) == REPLY == decode(tok, ids)
    assert not any("\ufffd" in p for p in pieces)
    assert len(pieces) < len(ids)  # the bytes of one character made no piece of their own


def test_a_split_character_waits_for_its_last_byte(tok: Tokenizer) -> None:
    stream = TextStream(tok)
    ellipsis = [3 + b for b in "…".encode()]
    assert [stream.feed(i) for i in ellipsis] == ["", "", "…"]


def test_only_invalid_bytes_show_as_replacement(tok: Tokenizer) -> None:
    stream = TextStream(tok)
    bad = [3 + 0xFF, 3 + 0xE2, 3 + 0x80]  # a byte no UTF-8 text holds, then a character cut short
    shown = [stream.feed(i) for i in bad] + [stream.feed(encode(tok, "a")[-1])]
    assert shown[0] == "\ufffd" and shown[1:3] == ["", ""] and shown[3] == "\ufffda"
    assert stream.close() == ""
    cut = TextStream(tok)
    assert cut.feed(3 + 0xE2) == "" and cut.close() == "\ufffd"  # a reply that ends mid-character


def test_specials_and_the_first_space(tok: Tokenizer) -> None:
    ids = [1, *encode(tok, "the cat"), EOS_ID]
    assert "".join(stream_text(tok, ids)) == "the cat" == decode(tok, ids)


# -- through the chat paths ---------------------------------------------------------------------


def scripted(ids: list[int]) -> Any:
    """A stand-in for brain.generate.generate that says exactly `ids`."""

    def generate(*args: Any, **kwargs: Any) -> Iterator[TokenChoice]:
        for i in ids:
            yield TokenChoice(i, 0.9, 0.5, ((i, 0.9),))

    return generate


@pytest.fixture
def baby(tmp_path: Path) -> Any:
    library = tmp_path / "ascii.txt"
    library.write_text(ASCII, encoding="utf-8")
    tutor = make_tutor(library)
    tutor.options.steps = 1
    tutor.run()  # a checkpoint, a run log and a tokenizer with byte fallback for REPLY
    return tutor


def reply_ids(tok: Tokenizer) -> list[int]:
    ids = encode(tok, REPLY)
    assert sum(is_byte(i) for i in ids) >= 12
    return [*ids, EOS_ID]


def check_pieces(pieces: list[str]) -> None:
    assert "".join(pieces).strip("\n") == REPLY
    assert not any("\ufffd" in p for p in pieces)


def test_the_tutor_streams_whole_characters(baby: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(school.speaker, "generate", scripted(reply_ids(baby.tokenizer)))
    events: list[Event] = []
    baby.subscribe(events.append)
    baby.handle(Chat(id="t1", text="hello"))
    chat = [e for e in events if isinstance(e, ChatEvent)]
    check_pieces([e.text for e in chat if not e.final])
    assert chat[-1].final and chat[-1].text == REPLY
    history = ChatLog(baby.paths.chat).tail(10)
    assert [(h.role, h.text) for h in history] == [("you", "hello"), ("baby", REPLY)]


def test_the_observer_streams_whole_characters(baby: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(school.speaker, "generate", scripted(reply_ids(baby.tokenizer)))
    observer = Observer(baby.options)
    events: list[Event] = []
    observer.subscribe(events.append)
    alive = threading.Event()
    alive.set()
    thread = threading.Thread(target=observer.run, args=(alive.is_set,))
    thread.start()
    try:
        observer.send(Chat(id="w1", text="hello"))
        wait_for(lambda: any(isinstance(e, ChatEvent) and e.final for e in events))
    finally:
        alive.clear()
        thread.join(10)
    chat = [e for e in events if isinstance(e, ChatEvent)]
    check_pieces([e.text for e in chat if not e.final])
    assert chat[-1].text == REPLY


class Terminal:
    """sys.stdout for `babyterm chat`: keeps each write, so the stream's pieces can be looked at."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_babyterm_chat_streams_whole_characters(
    baby: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(school.speaker, "generate", scripted(reply_ids(baby.tokenizer)))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    code = main(["chat", "--baby", baby.options.baby, "hello"])
    assert code == 0 and capsys.readouterr().err == ""
    check_pieces(terminal.writes)
    assert len(terminal.writes) > 5  # streamed, not printed at the end
    history = ChatLog(baby.paths.chat).tail(10)
    assert [(h.role, h.text) for h in history] == [("you", "hello"), ("baby", REPLY)]
    assert all(h.reply_id and h.time > 0 and h.weights == "step 1" for h in history)


def test_every_host_declares_what_the_speaker_needs(baby: Any) -> None:
    observer = Observer(baby.options)
    observer.wake()
    saved = SavedBaby(baby.paths, revive(baby.paths), print)
    for host in (baby, observer, saved):
        assert isinstance(host, ChatHost), type(host).__name__
    assert not isinstance(object(), ChatHost)
