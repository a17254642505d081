"""Milestones: snapshots of the weights at memorable ages, so a user can talk to an earlier self.

Steps 100, 1,000 and 10,000 are landmarks, then every `every` steps. At most `keep` are kept: the
landmarks and the newest, the oldest of the rest dropped first. Each is one safetensors file whose
sha256 sits in milestones/manifest.json. Listing them needs no torch (the app lists them).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from soul.atomic import write_atomic, write_json_atomic
from soul.paths import SoulError

LANDMARKS = (100, 1_000, 10_000)
_NAME = re.compile(r"^step-(\d{8})\.safetensors$")


def is_milestone(step: int, every: int = 10_000) -> bool:
    return step in LANDMARKS or (step > LANDMARKS[-1] and every > 0 and step % every == 0)


def milestone_name(step: int) -> str:
    return f"step-{step:08d}.safetensors"


def list_milestones(folder: Path) -> list[int]:
    """Steps of the milestones on disk, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name)))


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_milestone(folder: Path, step: int, tensors: dict[str, Any], keep: int = 24) -> Path:
    """Write the weights of `step` (from soul.checkpoint.model_tensors) and prune to `keep`."""
    from safetensors.torch import save_file

    path = folder / milestone_name(step)
    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    manifest = _manifest(folder)
    manifest[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    steps = list_milestones(folder)
    removable = [s for s in steps if s not in LANDMARKS and s != step]
    while len(steps) > keep and removable:
        gone = removable.pop(0)
        (folder / milestone_name(gone)).unlink(missing_ok=True)
        manifest.pop(milestone_name(gone), None)
        steps.remove(gone)
    write_json_atomic(folder / "manifest.json", manifest)
    return path


def load_milestone(folder: Path, step: int, device: str = "cpu") -> dict[str, Any]:
    """The weights of milestone `step`, checked against the manifest's checksum."""
    from safetensors.torch import load

    path = folder / milestone_name(step)
    if not path.exists():
        have = ", ".join(str(s) for s in list_milestones(folder)) or "none yet"
        raise SoulError(f"no milestone at step {step} (milestones: {have})")
    data = path.read_bytes()
    expected = _manifest(folder).get(path.name)
    if expected != hashlib.sha256(data).hexdigest():
        raise SoulError(f"milestone {path.name} is damaged (checksum mismatch)")
    return {k: v.to(device) for k, v in load(data).items()}
