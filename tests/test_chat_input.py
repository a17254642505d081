"""Bad chat input, engine side: whatever text a user sends, the tutor answers it (a final ChatEvent) and
never raises; what it emits and logs stays valid JSON."""

from __future__ import annotations

import json
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from school.commands import Chat, Correct
from school.events import ChatEvent, ErrorEvent, Event
from school.options import MAX_PROMPT_CHARS, TrainOptions
from school.tokenizer import scrub
from school.tutor import Tutor
from soul.jsonl import read_jsonl

FAST = dict(batch_size=8, warmup_steps=5, eval_batches=2, save_every=10_000, save_minutes=60.0)
TINY = dict(dim=32, n_layers=2, n_heads=2, max_seq_len=32)

BAD_INPUTS = {
    "empty": "",
    "blank": " \n\t ",
    "100k characters": "all work and no play " * 5000,
    "one 100k word": "x" * 100_000,
    "emoji": "👶🍼 hello 👨‍👩‍👧‍👦 🏳️‍🌈 ✨",
    "CJK": "你好，宝宝。今天学了什么？日本語も話せますか。한국어",
    "right-to-left": "שלום עולם مرحبا بالعالم \u202eevil\u202c",
    "clear screen": "\x1b[2J\x1b[H hello",
    "set title": "\x1b]0;pwned\x07 hello",
    "NUL and controls": "a\x00b\x01c\x7f\x08\r\n\x0b\x0c",
    "private use only": "\ue000\uf8ff\U000f0000",
    "combining marks": "e" + "\u0301" * 500,
    "markup": "[bold red]not markup[/] <s></s> <0x41> <unk> ▁▁",
    "zero-width": "\u200b\u200c\u200d\ufeff",
}


@pytest.fixture(scope="module")
def tutor(tmp_path_factory: pytest.TempPathFactory) -> Tutor:
    """A tiny prepared tutor (not training): chat is served between steps, here called directly."""
    torch.set_num_threads(1)
    library = tmp_path_factory.mktemp("library")
    for name in sorted(topics)[:12]:
        (library / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    home = tmp_path_factory.mktemp("home")
    options = TrainOptions(
        home=str(home), library=str(library), brain="transformer", preset="tiny", vocab_size=300, threads=1
    )
    tutor = Tutor(options, clock=lambda: 1_700_000_000.0, syllabus_overrides=FAST, brain_overrides=TINY)
    tutor.prepare()
    for _ in range(3):
        tutor.train_step()
    return tutor


def chat(tutor: Tutor, text: str, reply_id: str, max_tokens: int = 8) -> list[Event]:
    events: list[Event] = []
    tutor.subscribe(events.append)
    try:
        tutor.handle(Chat(id=reply_id, text=text, max_tokens=max_tokens, seed=0))
    finally:
        tutor.subscribers.remove(events.append)
    return events


def check_answered(events: list[Event], text: str, reply_id: str) -> ChatEvent:
    """Exactly one final reply for this id, no error, and every event survives JSON."""
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    finals = [e for e in events if isinstance(e, ChatEvent) and e.final]
    assert len(finals) == 1 and finals[0].reply_id == reply_id
    assert all(isinstance(e, ChatEvent) and e.reply_id == reply_id for e in events)
    for e in events:
        assert json.loads(json.dumps(e.to_dict())) == json.loads(json.dumps(e.to_dict(), ensure_ascii=False))
    final = finals[0]
    assert final.prompt == scrub(text)[-MAX_PROMPT_CHARS:]  # a long message is read from its end
    assert len(final.tokens) <= 8
    return final


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_answered(tutor: Tutor, name: str) -> None:
    text = BAD_INPUTS[name]
    step, weights = tutor.step, [p.clone() for p in tutor.model.parameters()]
    check_answered(chat(tutor, text, f"bad-{name}"), text, f"bad-{name}")
    assert tutor.step == step  # chatting taught nothing
    assert all(torch.equal(a, b) for a, b in zip(weights, tutor.model.parameters(), strict=True))
    history = [r for r in read_jsonl(tutor.paths.chat) if r.get("reply_id") == f"bad-{name}"]
    assert [r["role"] for r in history] == ["you", "baby"]
    assert history[0]["text"] == scrub(text)[-MAX_PROMPT_CHARS:]


def test_training_goes_on_after_the_bad_inputs(tutor: Tutor) -> None:
    for name, text in BAD_INPUTS.items():
        chat(tutor, text, f"again-{name}", max_tokens=2)
    stats = tutor.train_step()
    assert torch.isfinite(torch.tensor(stats["loss"]))


def test_a_correction_with_bad_text_is_learned_safely(tutor: Tutor) -> None:
    before = tutor.librarian.extra_tokens
    events: list[Event] = []
    tutor.subscribe(events.append)
    try:
        for name, text in BAD_INPUTS.items():
            tutor.handle(Correct(id=f"bad-{name}", text=text))
    finally:
        tutor.subscribers.remove(events.append)
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert tutor.librarian.extra_tokens > before
    lines = tutor.paths.extra_text.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert all(json.loads(line)["text"] for line in lines)


def test_lone_surrogates_from_a_terminal_are_answered(tutor: Tutor) -> None:
    text = "caf\udce9 \ud800 ok"  # what undecodable terminal bytes become (surrogateescape)
    final = check_answered(chat(tutor, text, "surrogates"), text, "surrogates")
    assert final.text is not None


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_answered(tutor: Tutor, text: str) -> None:
    check_answered(chat(tutor, text, "any", max_tokens=3), text, "any")


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
ANY_CHAR = st.one_of(st.characters(exclude_categories=()), SURROGATE)


@settings(max_examples=100, deadline=None)
@given(text=st.text(ANY_CHAR, max_size=200))
def test_any_text_encodes_and_round_trips(tutor: Tutor, text: str) -> None:
    """Lone surrogates too: they encode as U+FFFD, where the tokenizer itself would raise TypeError."""
    lb = tutor.librarian
    ids = lb.encode(text)
    assert all(0 <= i < lb.vocab_size for i in ids)
    assert lb.decode(ids) == scrub(text).replace("\u2581", " ")


def test_the_history_file_is_valid_json_throughout(tutor: Tutor) -> None:
    chat(tutor, "\x1b[31mred\x1b[0m", "last")
    path: Path = tutor.paths.chat
    # "\n" only: str.splitlines would also cut at U+2028 or U+0085, which JSON leaves as they are
    for line in path.read_text(encoding="utf-8").rstrip("\n").split("\n"):
        assert isinstance(json.loads(line), dict)
