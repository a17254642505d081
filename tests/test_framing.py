"""The one chat framing: how system, user and assistant messages become the baby's text."""

from __future__ import annotations

import pytest

from school.framing import STOP, cut_reply, frame


def test_one_turn_is_the_speakers_prompt_plus_newline() -> None:
    assert frame([("user", "Once upon a time")]) == "Once upon a time\n"


def test_a_conversation() -> None:
    messages = [("system", "You are small."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Who?")]
    assert frame(messages) == "You are small.\n\nHi\nHello!\n\nWho?\n"


def test_no_system_message_means_no_leading_blank_line() -> None:
    assert frame([("user", "a"), ("assistant", "b")]) == "a\nb\n\n"
    assert frame([]) == ""


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role 'tool'"):
        frame([("tool", "x")])


def test_replies_end_at_a_blank_line_or_eos() -> None:
    assert STOP == ("\n\n", "</s>")
    assert cut_reply("yes\nand more\n\nuser text") == ("yes\nand more", True)
    assert cut_reply("done</s>\n\nrest") == ("done", True)
    assert cut_reply("still going\n") == ("still going\n", False)
