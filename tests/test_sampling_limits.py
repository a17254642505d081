"""One range per sampling setting: the chat pane's /commands and `babyterm chat`'s flags take the
same values and refuse the rest in the same words (school.sampling_limits)."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from babyterm.chat_settings import ChatSettings
from babyterm.cli import build_parser
from school.sampling_limits import LIMITS, SettingError

FLAGS = {
    # field: (chat flag, /command, how the pane spells an argument of that field)
    "temperature": ("--temperature", "temp", "{}"),
    "top_k": ("--top-k", "topk", "{}"),
    "top_p": ("--top-p", "topp", "{}"),
    "min_p": ("--min-p", "minp", "{}"),
    "dynatemp_range": ("--dynatemp-range", "dynatemp", "{} 1"),
    "dynatemp_exponent": ("--dynatemp-exp", "dynatemp", "1 {}"),
    "repetition_penalty": ("--repetition-penalty", "rep", "{}"),
    "max_tokens": ("--max-tokens", "max", "{}"),
    "seed": ("--seed", "seed", "{}"),
    "emphasis": ("--emphasis", "emph", "{}"),
}


def _chat_types() -> dict[str, argparse.Action]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    chat = subparsers.choices["chat"]
    return {flag: action for action in chat._actions for flag in action.option_strings}


CHAT = _chat_types()

TEXTS = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "1.5", "5", "10", "100", "2000", "2001", "1e3", "nan", "x"]),
    st.integers(-10, 3000).map(str),
    st.floats(-10, 200, allow_nan=False).map(lambda f: f"{f:.3g}"),
)


def test_every_sampling_setting_has_one_range_for_the_pane_and_the_flags() -> None:
    assert set(FLAGS) == set(LIMITS)
    for field, (flag, name, _) in FLAGS.items():
        assert flag in CHAT, flag
        assert hasattr(ChatSettings(), field), name


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(FLAGS)), text=TEXTS)
def test_the_pane_and_the_flags_take_and_refuse_the_same_values(field: str, text: str) -> None:
    flag, name, spelled = FLAGS[field]
    try:
        flag_value, flag_refusal = CHAT[flag].type(text), ""
    except argparse.ArgumentTypeError as refusal:
        flag_value, flag_refusal = None, str(refusal)
    pane = ChatSettings()
    try:
        pane.set(name, spelled.format(text))
        pane_refusal = ""
    except SettingError as refusal:
        pane_refusal = str(refusal)
    assert bool(flag_refusal) == bool(pane_refusal), (flag_refusal, pane_refusal)
    if flag_refusal:
        assert "\n" not in pane_refusal and "\n" not in flag_refusal
        assert pane_refusal.startswith(f"{LIMITS[field].what} must be")
        assert flag_refusal.split(", not")[0] in pane_refusal  # the same words: what it must be
        return
    taken = getattr(pane, field)
    if (field, flag_value) in (("top_p", 1.0), ("min_p", 0.0)):
        assert taken is None  # the pane spells "no cut" as off
    else:
        assert taken == flag_value


@pytest.mark.parametrize("text", ["18446744073709551616", "-1"])
def test_a_seed_torch_cannot_take_is_refused_at_the_command_line(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="whole number from 0 to"):
        CHAT["--seed"].type(text)
