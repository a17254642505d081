"""Where a baby's soul lives: the home folder and the layout of one baby inside it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "babyterm"
DEFAULT_BABY = "baby"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SoulError(Exception):
    """A user-facing problem with the soul: printed as one line, never as a traceback."""


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """`--home`, else `BABYTERM_HOME`, else the platform's user data folder."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get("BABYTERM_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def check_baby_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise SoulError(
            f"bad baby name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no leading dot)"
        )
    return name


@dataclass(frozen=True)
class BabyPaths:
    """Every file of one baby. Creating this object touches nothing on disk."""

    home: Path
    name: str

    @property
    def root(self) -> Path:
        return self.home / "babies" / self.name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def milestones(self) -> Path:
        return self.root / "milestones"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def corpus(self) -> Path:
        """The encoded-corpus cache (token memmap and its manifest)."""
        return self.root / "corpus"

    @property
    def scribe(self) -> Path:
        return self.root / "scribe.jsonl"

    @property
    def chat(self) -> Path:
        return self.root / "chat.jsonl"

    @property
    def extra_text(self) -> Path:
        """Text the baby learns from beyond the library: scribe lines and chat corrections."""
        return self.root / "extra.jsonl"

    @property
    def trainer_log(self) -> Path:
        """stdout/stderr of a background training process (never shown raw on screen)."""
        return self.logs / "trainer.out"

    @property
    def lock(self) -> Path:
        return self.root / "trainer.lock"

    def exists(self) -> bool:
        return self.config.exists()

    def missing(self, doing: str = "", hint: str = "") -> SoulError:
        """The one line for a baby that is not there (`doing`: "to serve"), naming a home that is a
        file rather than calling it empty."""
        blocked = file_in_the_way(self.home)
        if blocked is not None:
            return SoulError(f"no babies in {self.home}: {blocked} is a file, not a folder")
        return SoulError(
            " ".join(w for w in (f"no baby named {self.name!r} in {self.home}", doing, hint) if w)
        )


def baby_paths(name: str = DEFAULT_BABY, home: str | os.PathLike[str] | None = None) -> BabyPaths:
    return BabyPaths(resolve_home(home), check_baby_name(name))


def list_babies(home: str | os.PathLike[str] | None = None) -> list[BabyPaths]:
    root = resolve_home(home) / "babies"
    blocked = file_in_the_way(root)
    if blocked is not None:  # a home that is a file holds no babies, and saying "none yet" would mislead
        raise SoulError(f"cannot look for babies in {root.parent}: {blocked} is a file, not a folder")
    if not root.is_dir():
        return []
    return [BabyPaths(root.parent, p.name) for p in sorted(root.iterdir()) if (p / "config.json").exists()]


def file_in_the_way(path: Path) -> Path | None:
    """The nearest of `path`'s folders (or `path` itself) that exists as something other than a
    folder, so that a path through a file is refused by name, not with "File exists"."""
    for folder in (path, *Path(path).parents):
        if folder.exists() or folder.is_symlink():
            return None if folder.is_dir() else folder
    return None


def check_home_writable(home: Path) -> None:
    """Fail early, with one line, when the soul cannot be written."""
    blocked = file_in_the_way(home / "babies")  # the babies' folder too: the logs screen lists it
    if blocked is not None:
        raise SoulError(f"cannot write to home {home}: {blocked} is a file, not a folder")
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SoulError(f"cannot write to home {home}: {e.strerror or e}") from None
