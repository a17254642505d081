"""What every export shares: the baby it is made from, and a fresh output folder filled all at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from school.revive import Revived, revive
from soul.paths import BabyPaths, SoulError, file_in_the_way

Source = BabyPaths | Revived
"""A baby on disk (its newest checkpoint is loaded) or one already revived."""


def revived(source: Source) -> Revived:
    return source if isinstance(source, Revived) else revive(source)


def into_fresh_folder(out_dir: Path, write: Callable[[Path], object]) -> list[Path]:
    """Let `write` fill a hidden folder beside `out_dir`, then rename it into place.

    `out_dir` must not exist or be empty, so nothing of the user's is ever overwritten; a failed
    export leaves nothing behind. Returns the files written, sorted.
    """
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SoulError(f"{out} already exists and is not empty; choose another --out")
    blocked = file_in_the_way(out.parent)
    if blocked is not None:
        raise SoulError(f"cannot write {out}: {blocked} is a file, not a folder")
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # removed again on failure
    try:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            write(tmp)
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            for folder in made:  # deepest first; only the folders this export made, and only if empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    except OSError as e:
        raise SoulError(f"cannot write {out}: {e.strerror or e}") from None
    return sorted(out.iterdir())
