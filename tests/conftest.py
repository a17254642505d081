"""Shared test fixtures: an isolated soul home and a small, quick library."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from school import compiler

DATA = Path(__file__).resolve().parent / "data"
"""The suite's own data (see data/README.md): nothing is read from beside the project."""


@pytest.fixture(scope="session", autouse=True)
def eager_steps() -> Iterator[None]:
    """--compile auto would compile every baby's training step (15-25 s each on 2 cores), those
    that module-scoped fixtures make before any test's own fixtures run included (one module's
    three babies took 82 s on a 2-core AVX2 machine); tests/test_compiler.py compiles one for real."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(compiler.ENV, "off")
        yield


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_worker() -> Iterator[None]:
    """The suite runs in pytest-xdist workers (pyproject's addopts), one per core: each worker and
    every babyterm it starts (OMP_NUM_THREADS, which default_threads honours) keep to one torch
    thread, as two 2-thread processes on 2 cores spin against each other several times slower."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    import torch

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture(scope="session", autouse=True)
def kernels_apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The C decode step (brain/native.py) is built into the session's temp folder, not the
    user's cache: once per worker, ~0.6 s."""
    from brain import native

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(native.CACHE_ENV, str(tmp_path_factory.mktemp("kernels")))
        yield


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own BABYTERM_HOME, so nothing touches the user's real babies."""
    home = tmp_path / "home"
    monkeypatch.setenv("BABYTERM_HOME", str(home))
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
