"""Shared test fixtures: an isolated soul home and a small, quick library."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
"""The suite's own data (see data/README.md): nothing is read from beside the project."""


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own BABYTERM_HOME, so nothing touches the user's real babies."""
    home = tmp_path / "home"
    monkeypatch.setenv("BABYTERM_HOME", str(home))
    # --compile auto would compile every test's training step (15-25 s each on 2 cores);
    # tests/test_compiler.py compiles one for real
    monkeypatch.setenv("BABYTERM_COMPILE", "off")
    return home


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    """The first ~200 KB of tinyshakespeare (public domain), vendored under tests/data."""
    return (DATA / "tinyshakespeare-start.txt").read_text(encoding="utf-8")


@pytest.fixture
def small_library(tmp_path: Path, shakespeare_text: str) -> Path:
    """~60 KB of Shakespeare: enough for a tokenizer, a split and a few quick steps."""
    path = tmp_path / "library.txt"
    path.write_text(shakespeare_text[:60_000], encoding="utf-8")
    return path
