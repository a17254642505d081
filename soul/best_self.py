"""The best self: the weights of the baby's best held-out score so far, beside its milestones.

milestones/best.safetensors holds the weights; milestones/best.json, the one file this module owns,
says whose they are: {"format": 1, "step", "val_bpb", "validation", "sha256", "size", "saved"}.
`validation` names the held-out text the score was measured on: a score on other text (a new
library) is no rival, so the best self starts over there. Listing it needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soul.atomic import write_atomic, write_json_atomic
from soul.paths import SoulError

BEST = "best"
"""What `--step best` and `/step best` name."""
FORMAT = 1
WEIGHTS = "best.safetensors"
RECORD = "best.json"


@dataclass(frozen=True)
class BestSelf:
    step: int
    val_bpb: float
    """Held-out bits per byte of these weights."""
    validation: str
    """The identity of the held-out text it was scored on (school's validation fingerprint)."""
    sha256: str
    size: int
    saved: float

    @classmethod
    def from_dict(cls, data: Any) -> BestSelf:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a format-1 best-self record")
        step, bpb = data.get("step"), data.get("val_bpb")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step {step!r}")
        if not isinstance(bpb, int | float) or isinstance(bpb, bool) or not math.isfinite(bpb):
            raise ValueError(f"val_bpb {bpb!r}")
        fields = {k: data.get(k) for k in ("validation", "sha256", "size", "saved")}
        if not isinstance(fields["validation"], str) or not isinstance(fields["sha256"], str):
            raise ValueError("no validation or sha256")
        if not isinstance(fields["size"], int) or not isinstance(fields["saved"], int | float):
            raise ValueError("no size or time")
        return cls(step, float(bpb), **fields)


def read_best(folder: Path) -> BestSelf | None:
    """The best self's record, or None when there is none (or it is damaged: then it starts over)."""
    try:
        return BestSelf.from_dict(json.loads((folder / RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def save_best(folder: Path, step: int, tensors: dict[str, Any], val_bpb: float, validation: str) -> Path:
    """Keep `tensors` (soul.checkpoint.model_tensors) as the best self; the record is written last."""
    from safetensors.torch import save_file

    path = folder / WEIGHTS
    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    data = path.read_bytes()
    record = BestSelf(
        step, float(val_bpb), validation, hashlib.sha256(data).hexdigest(), len(data), time.time()
    )
    write_json_atomic(folder / RECORD, {"format": FORMAT, **asdict(record)})
    return path


def forget_best(folder: Path) -> None:
    """Start the best self over (the record goes first: weights without one are never trusted)."""
    (folder / RECORD).unlink(missing_ok=True)
    (folder / WEIGHTS).unlink(missing_ok=True)


def load_best(folder: Path, device: str = "cpu") -> tuple[BestSelf, dict[str, Any]]:
    """The best self's record and weights, checked; a one-line SoulError when there is none or it is bad."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    record = read_best(folder)
    if record is None:
        raise SoulError("no best self yet (it is kept at the first evaluation on held-out text)")
    try:
        data = (folder / WEIGHTS).read_bytes()
    except OSError:
        raise SoulError("the best self's weights are missing") from None
    if record.size != len(data) or record.sha256 != hashlib.sha256(data).hexdigest():
        raise SoulError("the best self is damaged (checksum mismatch)")
    try:
        return record, {k: v.to(device) for k, v in load(data).items()}
    except (SafetensorError, ValueError) as e:
        raise SoulError(f"the best self is damaged ({e})") from None
