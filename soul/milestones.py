"""Milestones: snapshots of the weights at memorable ages, so a user can talk to an earlier self.

Steps 100, 1,000 and 10,000 are landmarks, then every `every` steps. At most `keep` are kept: the
landmarks and the newest, the oldest of the rest dropped first. Each is one safetensors file; its
record (step, sha256, size, when) sits in milestones/manifest.json, the one file this module owns.
Listing them needs no torch (the app lists them).

manifest.json, format 1: {"format": 1, "milestones": [{"step", "file", "sha256", "size", "saved"}]}.
Format 0 (main 92febe8, no "format" field) maps each file name to its sha256; it is read as such and
written as format 1 when a milestone is next saved. A damaged record is skipped with a message.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soul.atomic import write_atomic, write_json_atomic
from soul.best_self import BEST, load_best
from soul.paths import SoulError
from soul.resume_state import read_updates

LANDMARKS = (100, 1_000, 10_000)
MANIFEST_FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})\.safetensors$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Log = Callable[[str], None]


def is_milestone(step: int, every: int = 10_000) -> bool:
    return step in LANDMARKS or (step > LANDMARKS[-1] and every > 0 and step % every == 0)


def milestone_name(step: int) -> str:
    return f"step-{step:08d}.safetensors"


@dataclass(frozen=True)
class Milestone:
    """The record of one milestone file."""

    step: int
    sha256: str
    """Hex digest of the whole safetensors file."""
    size: int | None = None
    """Its size in bytes; None in a format-0 manifest, which did not record it."""
    saved: float | None = None
    """When it was kept (Unix time); None in a format-0 manifest."""
    updates: dict[str, Any] | None = None
    """The update sizes last recorded before it was kept (soul.resume_state.ResumeState.updates)."""

    @property
    def file(self) -> str:
        return milestone_name(self.step)

    def to_dict(self) -> dict[str, Any]:
        out = {"file": self.file, **asdict(self)}
        if self.updates is None:
            out.pop("updates")
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Milestone:
        """A record read back from JSON; ValueError when any field is not what it must be."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        step, sha, size, saved = (data.get(k) for k in ("step", "sha256", "size", "saved"))
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step {step!r}")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise ValueError("no sha256")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError(f"size {size!r}")
        if saved is not None and (not isinstance(saved, int | float) or isinstance(saved, bool)):
            raise ValueError(f"saved {saved!r}")
        if data.get("file", milestone_name(step)) != milestone_name(step):
            raise ValueError(f"file {data.get('file')!r} is not step {step}'s")
        updates = read_updates(data.get("updates"))
        return cls(step, sha, size, None if saved is None else float(saved), updates)


def read_manifest(folder: Path, log: Log | None = None) -> dict[int, Milestone]:
    """The valid milestone records by step; damaged ones are skipped with a message to `log`."""
    say = log or (lambda message: None)
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        say(f"milestones: manifest.json is damaged ({e}); its milestones are skipped")
        return {}
    fmt = data.get("format", 0)
    if fmt == 0:  # main 92febe8: {"step-00000100.safetensors": "sha256", ...}
        entries: list[Any] = []
        for name, sha in data.items():
            m = _NAME.match(name)
            entries.append({"step": int(m.group(1)), "sha256": sha} if m else {"file": name})
    elif fmt == MANIFEST_FORMAT and isinstance(data.get("milestones"), list):
        entries = data["milestones"]
    else:
        say(f"milestones: manifest.json has format {fmt!r}, which this babyterm cannot read; skipped")
        return {}
    found: dict[int, Milestone] = {}
    for n, entry in enumerate(entries, 1):
        try:
            record = Milestone.from_dict(entry)
        except ValueError as e:
            say(f"milestones: record {n} of manifest.json is damaged ({e}); skipped")
            continue
        found[record.step] = record
    return found


def write_manifest(folder: Path, milestones: dict[int, Milestone]) -> None:
    records = [milestones[s].to_dict() for s in sorted(milestones)]
    write_json_atomic(folder / "manifest.json", {"format": MANIFEST_FORMAT, "milestones": records})


def list_milestones(folder: Path) -> list[int]:
    """Steps of the milestone files on disk, oldest first (cheap: read_manifest says which are sound)."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name)))


def save_milestone(
    folder: Path,
    step: int,
    tensors: dict[str, Any],
    keep: int = 24,
    log: Log | None = None,
    updates: dict[str, Any] | None = None,
) -> Path:
    """Write the weights of `step` (from soul.checkpoint.model_tensors) and prune to `keep`.

    `updates`, the last recorded update sizes, go into its record for the x-ray.
    """
    from safetensors.torch import save_file

    path = folder / milestone_name(step)
    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    data = path.read_bytes()
    manifest = read_manifest(folder, log)
    manifest[step] = Milestone(step, hashlib.sha256(data).hexdigest(), len(data), time.time(), updates)
    steps = list_milestones(folder)
    removable = [s for s in steps if s not in LANDMARKS and s != step]
    while len(steps) > keep and removable:
        gone = removable.pop(0)
        (folder / milestone_name(gone)).unlink(missing_ok=True)
        manifest.pop(gone, None)
        steps.remove(gone)
    write_manifest(folder, {s: m for s, m in manifest.items() if s in steps})
    return path


def load_milestone(folder: Path, step: int | str, device: str = "cpu") -> dict[str, Any]:
    """The weights of milestone `step` (or of the best self, `step` "best"), checked against its
    record; a one-line SoulError if unsound."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if step == BEST:
        return load_best(folder, device)[1]

    path = folder / milestone_name(step)
    if not path.exists():
        have = ", ".join(str(s) for s in list_milestones(folder)) or "none yet"
        raise SoulError(f"no milestone at step {step} (milestones: {have})")
    problems: list[str] = []
    record = read_manifest(folder, problems.append).get(step)
    if record is None:
        why = f": {problems[0]}" if problems else ""
        raise SoulError(f"milestone {path.name} has no sound record in manifest.json{why}")
    data = path.read_bytes()
    if (record.size is not None and record.size != len(data)) or record.sha256 != hashlib.sha256(
        data
    ).hexdigest():
        raise SoulError(f"milestone {path.name} is damaged (checksum mismatch)")
    try:
        return {k: v.to(device) for k, v in load(data).items()}
    except (SafetensorError, ValueError) as e:
        raise SoulError(f"milestone {path.name} is damaged ({e})") from None
