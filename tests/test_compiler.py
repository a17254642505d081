"""--compile: the modes, the silent fallback to eager, and the warm-up reported apart."""

from __future__ import annotations

import pytest
import torch

from school import compiler
from school.compiler import Compiled, compile_mode, compile_wanted, maybe_compile


def test_modes_and_older_booleans() -> None:
    assert [compile_mode(v) for v in (True, False, None, "auto", "on", "off")] == [
        "on",
        "auto",
        "auto",
        "auto",
        "on",
        "off",
    ]
    with pytest.raises(ValueError, match="unknown compile mode 'sometimes'"):
        compile_mode("sometimes")
    cpu = torch.device("cpu")
    assert compile_wanted("on", cpu) and not compile_wanted("off", cpu)
    assert not compile_wanted("auto", cpu)  # nothing measured a gain on CPU
    double = torch.nn.Linear(2, 2)
    assert maybe_compile(double, "off", cpu) is double


def test_a_failing_compile_falls_back_to_eager_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(module):
        def run(*args):
            raise RuntimeError("no C compiler")

        return run

    monkeypatch.setattr(compiler.torch, "compile", broken)
    said: list[str] = []
    module = torch.nn.Linear(3, 2)
    wrapped = Compiled(module, on_fallback=said.append)
    x = torch.randn(4, 3)
    for _ in range(3):
        torch.testing.assert_close(wrapped(x), module(x))
    assert len(said) == 1 and "no C compiler" in said[0]


def test_the_first_call_is_timed_as_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler.torch, "compile", lambda module: module)
    warmups: list[float] = []
    module = torch.nn.Linear(3, 2)
    wrapped = Compiled(module, on_warmup=warmups.append)
    x = torch.randn(4, 3)
    for _ in range(3):
        torch.testing.assert_close(wrapped(x), module(x))
    assert len(warmups) == 1 and warmups[0] >= 0
