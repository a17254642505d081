"""What the chat speaker needs from whoever it speaks for: the tutor, the observer or `babyterm chat`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from tokenizers import Tokenizer

from brain import Brain
from school.events import Event
from soul.chat_log import ChatLog
from soul.record import BabyRecord


@runtime_checkable
class ChatHost(Protocol):
    """A baby that can talk: its brain and tokenizer, a way to be heard, and its history."""

    @property
    def model(self) -> Brain:
        """The brain that answers with the live weights."""
        ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def pixel(self) -> torch.Tensor | None:
        """The baby's colour, which it feels while it talks (None: the brain's neutral one)."""
        ...

    @property
    def step(self) -> int: ...

    @property
    def record(self) -> BabyRecord:
        """Its birth record: the brain, and the conventions its prompts follow (`<s>` first or not)."""
        ...

    @property
    def weights(self) -> str:
        """What the live weights are called in a reply ("live (step 120)", "milestone step 100")."""
        ...

    @property
    def chat_log(self) -> ChatLog: ...

    def emit(self, event: Event) -> None: ...

    def warn(self, message: str) -> None: ...

    def interrupts(self, reply_id: str) -> bool:
        """Whether a command waiting now ends this reply (its cancel, or a stop)."""
        ...

    def milestone(self, step: int | str) -> Brain:
        """The brain as it was at milestone `step`, or its best self for "best" (raises if there is none)."""
        ...

    def learn(self, text: str, source: str) -> None:
        """Add `text` to what the baby trains on (a correction)."""
        ...
