"""A baby's birth record (config.json): its brain, how it is taught and what it reads."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from soul.atomic import write_json_atomic
from soul.paths import BabyPaths, SoulError

FORMAT_VERSION = 1


@dataclass
class BabyRecord:
    brain: dict[str, Any]
    """The brain's config (its `to_dict()`, with the brain's name under "brain")."""
    preset: str
    syllabus: dict[str, Any]
    library: str | None
    """Path of the library it learns from; None means Python's built-in docs."""
    created: float = field(default_factory=time.time)
    conventions: dict[str, str] = field(default_factory=dict)
    """How its text is cut and framed: "split" ("tail"), "pieces" ("words-v2"), "bos"
    ("document-start": prompts begin with <s>). Absent: main 92febe8's ways (the interleaved split,
    pieces that run on over newlines and digits, prompts without <s>)."""
    version: int = FORMAT_VERSION

    @property
    def brain_name(self) -> str:
        return self.brain["brain"]

    @property
    def vocab_size(self) -> int:
        return int(self.brain["vocab_size"])

    @property
    def split(self) -> str:
        return self.conventions.get("split", "interleave")

    @property
    def bos_prompt(self) -> bool:
        """Whether generation starts a prompt with <s>, as its training documents start."""
        return self.conventions.get("bos") == "document-start"

    def save(self, paths: BabyPaths) -> None:
        write_json_atomic(paths.config, asdict(self))

    @classmethod
    def load(cls, paths: BabyPaths) -> BabyRecord:
        try:
            data = json.loads(paths.config.read_text(encoding="utf-8"))
            record = cls(**data)
            if not isinstance(record.brain, dict) or "brain" not in record.brain:
                raise TypeError("no brain in config")
        except (OSError, ValueError, TypeError) as e:
            raise SoulError(
                f"baby {paths.name!r} has a damaged config.json ({e}); start a new --baby"
            ) from None
        if record.version > FORMAT_VERSION:
            raise SoulError(f"baby {paths.name!r} was made by a newer babyterm (format {record.version})")
        return record
