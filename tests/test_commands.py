"""Typed commands: every kind survives the queue, anything else is refused with one clear line."""

from __future__ import annotations

import queue

import pytest

from brain.generate import Sampling
from school.commands import (
    COMMAND_TYPES,
    Attend,
    CancelChat,
    Chat,
    Command,
    CommandError,
    Correct,
    Pause,
    Resume,
    Save,
    Serve,
    Steer,
    Stop,
    Teach,
    XRayRequest,
    command_from_dict,
)
from school.events import StateEvent, TrainerState, event_from_dict
from school.inbox import Inbox
from school.speaker import sampling_from

EXAMPLES: list[Command] = [
    Pause(),
    Resume(),
    Save(),
    Stop(),
    Chat(id="r1", text="hello *you*"),
    Chat(
        id="r2",
        text="x",
        max_tokens=7,
        temperature=0,
        top_k=None,
        top_p=0.9,
        seed=3,
        emphasis=3.0,
        weights=100,
        source="http",
    ),
    CancelChat(id="r1"),
    Correct(id="r1", text="better"),
    Attend(id="r1", index=4),
    XRayRequest(id="x1", text="to be"),
    XRayRequest(id="x2", text="or not", weights=100, top_k=3),
    Steer(id="r3", reply_id="r1", index=2, token_id=300),
    Teach(id="r3"),
    Serve(),
    Serve(host="::1", port=0, stop=True),
]


def test_every_kind_has_an_example() -> None:
    assert {c.kind for c in EXAMPLES} == set(COMMAND_TYPES)


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda c: c.kind)
def test_round_trip(command: Command) -> None:
    data = command.to_dict()
    assert data["kind"] == command.kind
    assert command_from_dict(data) == command


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"kind": "dance"}, "unknown command 'dance'"),
        ({"name": "pause"}, "unknown command None"),  # no kind: not a command
        ("pause", "not str"),
        ({"kind": "chat", "id": "r"}, "text is missing"),
        ({"kind": "chat", "id": "r", "text": 5}, "text is int"),
        ({"kind": "chat", "id": "r", "text": "x", "max_tokens": "many"}, "max_tokens is str"),
        ({"kind": "chat", "id": "r", "text": "x", "max_tokens": True}, "max_tokens is bool"),
        ({"kind": "chat", "id": "r", "text": "x", "weights": 1.5}, "weights is float"),
        ({"kind": "attend", "id": "r", "index": 1.0}, "index is float"),
        ({"kind": "stop", "now": True}, "unknown field 'now'"),
        ({"kind": "serve", "stop": 1}, "stop is int"),
        ({"kind": "serve", "port": True}, "port is bool"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(data: object, why: str) -> None:
    with pytest.raises(CommandError, match=why.replace("(", r"\(")):
        command_from_dict(data)


def test_an_int_passes_for_a_float() -> None:
    assert command_from_dict({"kind": "chat", "id": "r", "text": "x", "temperature": 1}).temperature == 1


def test_chat_defaults_are_samplings() -> None:
    """The app cannot import torch, so Chat writes the defaults out; they must stay Sampling's."""
    chat, sampling = Chat(id="", text=""), Sampling()
    names = ("temperature", "top_k", "top_p", "repetition_penalty", "max_tokens", "seed")
    for name in (*names, "min_p", "dynatemp_range", "dynatemp_exponent"):
        assert getattr(chat, name) == getattr(sampling, name), name


def test_the_inbox_refuses_a_malformed_command_and_goes_on() -> None:
    warnings: list[str] = []
    inbox = Inbox(queue.Queue(), warnings.append)
    inbox.queue.put({"kind": "chat", "id": 3})
    inbox.put(Save())
    assert inbox.next() == Save()
    assert inbox.next() is None
    assert len(warnings) == 1 and "command refused: chat command: text is missing" in warnings[0]


def test_the_inbox_keeps_what_does_not_interrupt_a_reply() -> None:
    inbox = Inbox(queue.Queue(), print)
    for command in (Save(), CancelChat(id="other"), CancelChat(id="r1"), Pause()):
        inbox.put(command)
    assert inbox.interrupts("r1")  # stops looking at the cancel: the pause waits on the queue
    assert not inbox.interrupts("r1")
    assert [inbox.next(), inbox.next(), inbox.next(), inbox.next()] == [
        Save(),
        CancelChat(id="other"),
        Pause(),
        None,
    ]
    inbox.put(Stop())
    assert inbox.interrupts("r9") and inbox.next() == Stop()  # the stop still reaches the trainer


def test_trainer_states_read_back_from_old_logs() -> None:
    for state in TrainerState:
        event = event_from_dict({"kind": "state", "step": 3, "state": state.value, "detail": ""})
        assert event == StateEvent(3, state.value) and TrainerState(event.state) is state
    assert f"{TrainerState.PAUSED}" == "paused"


def test_the_speaker_passes_min_p_and_dynamic_temperature_on() -> None:
    asked = Chat(id="", text="", min_p=0.05, dynatemp_range=0.5, dynatemp_exponent=2.0)
    s = sampling_from(asked)
    assert (s.min_p, s.dynatemp_range, s.dynatemp_exponent) == (0.05, 0.5, 2.0)
    off = sampling_from(Chat(id="", text="", min_p=0.0, dynatemp_range=-1.0))
    assert (off.min_p, off.dynatemp_range) == (None, 0.0)  # 0 keeps every token; no negative range
