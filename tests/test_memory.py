"""Freed memory goes back to the system (school/memory.py), where the C library can be asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from school import memory


def resident_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(memory._malloc_trim() is None, reason="no malloc_trim in this C library")
def test_freed_heap_memory_leaves_the_process() -> None:
    # 64 KB blocks sit in the heap (below glibc's mmap threshold); the last one pins the heap's
    # top, so freeing the rest leaves ~128 MB of holes that only malloc_trim hands back
    blocks = [bytearray(64 * 1024) for _ in range(2000)]
    pin = bytearray(64 * 1024)
    del blocks
    before = resident_mb()
    assert memory.give_back()
    assert before - resident_mb() > 64
    del pin
