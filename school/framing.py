"""How a conversation becomes text for the baby: the one framing the speaker, the server and the GGUF share.

    {system}\n\n                      only when a system message exists (the first one; later ones too)
    {user}\n{assistant}\n\n           per turn: a user message, one newline, then the baby's reply

A reply ends at a blank line ("\n\n") or at </s>: those are the stop strings. A conversation that ends
with a user message ends in "\n", where the baby's reply begins; the one-turn case is the speaker's
`prompt + "\n"`. <s> (BOS) is not part of the text: callers put the id in front (babyterm's tokenizer
spells a literal "<s>" out, and GGUF readers add it from `add_bos_token`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
STOP = ("\n\n", "</s>")
"""Where a reply ends: a blank line, or the end-of-text token's text."""

_AFTER = {"system": "\n\n", "user": "\n", "assistant": "\n\n"}


def frame(messages: Iterable[tuple[str, str]]) -> str:
    """The text of `messages` ((role, content) pairs, roles system/user/assistant), framed as above.

    Raises ValueError for an unknown role.
    """
    parts: list[str] = []
    for role, content in messages:
        if role not in _AFTER:
            raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        parts.append(f"{content}{_AFTER[role]}")
    return "".join(parts)


def cut_reply(text: str) -> tuple[str, bool]:
    """(the reply up to its first stop string, whether a stop string was found)."""
    ends = [i for i in (text.find(s) for s in STOP) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)
