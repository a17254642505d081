"""A baby's birth record (config.json): its brain, how it is taught and what it reads."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from soul.atomic import write_json_atomic
from soul.paths import BabyPaths, SoulError

FORMAT_VERSION = 1
"""The newest config.json format this code knows. 0 (no `format` field) is what main 92febe8 wrote;
1 adds the field itself. A field added later gets a default that means "as format 0 did", so an
older record reads as before; a new baby gets the newer value at birth."""


@dataclass
class BabyRecord:
    brain: dict[str, Any]
    """The brain's config (its `to_dict()`, with the brain's name under "brain")."""
    preset: str
    syllabus: dict[str, Any]
    library: str | None = None
    """Path of the library it learns from; None means Python's built-in docs."""
    created: float = field(default_factory=time.time)
    conventions: dict[str, str] = field(default_factory=dict)
    """How its text is cut and framed: "split" ("tail"), "pieces" ("words-v2"), "bos"
    ("document-start": prompts begin with <s>). Absent: main 92febe8's ways (the interleaved split,
    pieces that run on over newlines and digits, prompts without <s>)."""
    recipe: dict[str, Any] = field(default_factory=dict)
    """What school/recipe.py chose at birth, with its inputs (library bytes, measured tokens/s).
    Absent: a baby born from a named preset, or before the recipe (its brain and syllabus say all)."""
    format: int = FORMAT_VERSION
    """The soul's format; a record read without one is 0 (main 92febe8's souls)."""
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)
    """Fields this code does not know (main 92febe8's "version": 1, say): kept and written back."""

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
        data = asdict(self)
        if self.format == 0:  # written as main 92febe8 wrote it, so that code still opens it
            del data["format"]
        if not self.conventions:  # absent means main 92febe8's conventions
            del data["conventions"]
        if not self.recipe:
            del data["recipe"]
        write_json_atomic(paths.config, {**data.pop("unknown"), **data})

    @classmethod
    def load(cls, paths: BabyPaths) -> BabyRecord:
        try:
            data = json.loads(paths.config.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            fmt = data.get("format", 0)
            if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 0:
                raise TypeError(f"format {fmt!r}")
            known = {f.name for f in fields(cls)} - {"format", "unknown"}
            record = cls(
                **{k: v for k, v in data.items() if k in known},
                format=fmt,
                unknown={k: v for k, v in data.items() if k not in known and k != "format"},
            )
            if not isinstance(record.brain, dict) or "brain" not in record.brain:
                raise TypeError("no brain in config")
        except (OSError, ValueError, TypeError) as e:
            raise SoulError(
                f"baby {paths.name!r} has a damaged config.json ({e}); start a new --baby"
            ) from None
        if record.format > FORMAT_VERSION:
            raise SoulError(
                f"baby {paths.name!r} was made by a newer babyterm (format {record.format}, "
                f"this one reads up to {FORMAT_VERSION}): upgrade babyterm to open it"
            )
        return record
