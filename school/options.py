"""What a training run is asked to do: the options the CLI and the app pass to the tutor (torch-free)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainOptions:
    """Options of one training run. None means: the baby's saved choice, else the default."""

    baby: str = "baby"
    home: str | None = None
    library: str | None = None
    brain: str | None = None
    preset: str | None = None
    device: str = "auto"
    precision: str = "auto"
    """One of PRECISIONS; auto takes bf16 autocast where the hardware runs it natively."""
    steps: int | None = None
    """Stop after this many steps of this run (a resumed baby trains this many more)."""
    minutes: float | None = None
    """Stop after this many minutes of this run."""
    threads: int | None = None
    """Torch CPU threads; None lets the tutor choose."""
    seed: int = 1337
    compile: str = "auto"
    """torch.compile the training step: "on", "off" or "auto" (school.compiler: only where it was
    measured to gain, which is a CPU with a C++ compiler, for runs long enough to repay the warm-up)."""
    vocab_size: int | None = None
    """Tokenizer size for a new baby (default: the recipe's, or 4200 with a preset); fixed for life."""
    context: int | None = None
    """Training window (the brain's max_seq_len) for a new baby; fixed for life after birth."""
    dropout: float | None = None
    """Dropout while training; None: the recipe's (or the preset's) choice, else the baby's own."""
    weight_decay: float | None = None
    lr: float | None = None
    """Peak learning rate (the floor is a tenth of it)."""
    bpe_dropout: float | None = None
    """Chance a training token is read as its merge's two pieces (school/unmerge.py)."""
    val_text: str | None = None
    """A file or folder to score validation on; the whole library is then learned from."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


PRECISIONS = ("auto", "fp32", "bf16")

MAX_PROMPT_CHARS = 4000
"""A chat message is read up to its last this many characters: the window is a few hundred tokens,
and what lies before it could only cost encoding time."""
