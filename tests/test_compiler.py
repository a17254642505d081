"""--compile: the modes, the silent fallback to eager, and the warm-up reported apart."""

from __future__ import annotations

import math

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
    double = torch.nn.Linear(2, 2)
    assert maybe_compile(double, "off", cpu) is double


def test_auto_compiles_long_cpu_runs_where_a_compiler_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiler.ENV, raising=False)
    monkeypatch.setattr(compiler, "cpp_compiler", lambda: "/usr/bin/g++")
    cpu = torch.device("cpu")
    assert compile_wanted("auto", cpu)  # open-ended: the app's run
    assert compile_wanted("auto", cpu, steps_left=5000, minutes=5)
    assert not compile_wanted("auto", cpu, steps_left=50)  # too short to repay the warm-up
    assert not compile_wanted("auto", cpu, minutes=1)  # a minute: the warm-up eats the gain
    assert not compile_wanted("auto", torch.device("cuda"))  # not measured there
    assert not compile_wanted("auto", torch.device("mps"))
    monkeypatch.setenv(compiler.ENV, "off")
    assert not compile_wanted("auto", cpu) and compile_wanted("on", cpu)  # the env moves auto only
    monkeypatch.setenv(compiler.ENV, "on")
    assert compile_wanted("auto", cpu, steps_left=1)
    monkeypatch.delenv(compiler.ENV)
    monkeypatch.setattr(compiler, "cpp_compiler", lambda: None)  # inductor's CPU kernels need one
    assert not compile_wanted("auto", cpu)


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
    starts: list[bool] = []
    wrapped = Compiled(module, on_warmup=warmups.append, on_start=lambda: starts.append(True))
    x = torch.randn(4, 3)
    for _ in range(3):
        torch.testing.assert_close(wrapped(x), module(x))
    assert len(warmups) == 1 and warmups[0] >= 0 and starts == [True]


def test_the_tutor_trains_the_same_compiled(small_library) -> None:
    """A real torch.compile of the real step (fused head, custom autograd, pixel): same losses."""
    from school.compiler import cpp_compiler
    from school.events import ProgressEvent
    from school.options import TrainOptions
    from school.tutor import Tutor

    if cpp_compiler() is None:
        pytest.skip("inductor's CPU kernels need a C++ compiler")
    torch.set_num_threads(1)
    losses: dict[str, list[float]] = {}
    for mode in ("off", "on"):
        options = TrainOptions(
            baby=f"b-{mode}",
            library=str(small_library),
            brain="transformer",
            preset="tiny",
            vocab_size=300,
            threads=1,
            precision="fp32",
            compile=mode,
        )
        tutor = Tutor(
            options,
            syllabus_overrides=dict(batch_size=4, warmup_steps=2, lr=3e-3),
            brain_overrides=dict(dim=32, n_layers=1, n_heads=2, max_seq_len=16),
        )
        said: list[ProgressEvent] = []

        def hear(e: object, said: list[ProgressEvent] = said) -> None:
            if isinstance(e, ProgressEvent) and e.task == "compile":
                said.append(e)

        tutor.subscribe(hear)
        tutor.prepare()
        losses[mode] = [tutor.train_step()["loss"] for _ in range(4)]
        if mode == "on":
            assert isinstance(tutor.learner, Compiled) and tutor.learner.fn is not None  # no fallback
            assert [e.done for e in said] == [0.0, 1.0] and "warm-up took" in said[1].detail
        else:
            assert tutor.learner is tutor.model and not said
    assert losses["on"] == pytest.approx(losses["off"], abs=1e-4)
    assert losses["on"][-1] < losses["on"][0]


def test_a_backward_that_fails_to_compile_falls_back_and_the_step_is_retaken(
    small_library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inductor compiles the backward at the first backward: a failure there must not end training."""
    from school.options import TrainOptions
    from school.tutor import Tutor

    class Unbuildable(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            return x.clone()

        @staticmethod
        def backward(ctx, grad):  # type: ignore[override]
            raise RuntimeError("C++ compile failed")

    def broken_backward(module):
        def run(*args):
            loss, *rest = module(*args)
            return (Unbuildable.apply(loss), *rest)

        return run

    monkeypatch.setattr(compiler.torch, "compile", broken_backward)
    options = TrainOptions(
        library=str(small_library), brain="transformer", preset="tiny", vocab_size=300,
        threads=1, precision="fp32", compile="on",
    )  # fmt: skip
    tutor = Tutor(options, brain_overrides=dict(dim=32, n_layers=1, n_heads=2, max_seq_len=16))
    warned: list[str] = []
    tutor.warn = warned.append  # type: ignore[method-assign]
    tutor.prepare()
    stats = tutor.train_step()
    assert tutor.step == 1 and math.isfinite(stats["loss"])  # the step was taken, eagerly
    assert tutor.learner.fn is None and len(warned) == 1 and "C++ compile failed" in warned[0]
    tutor.train_step()
    assert tutor.step == 2 and len(warned) == 1


def test_auto_counts_the_steps_of_this_run_not_the_babys_age(
    small_library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--steps N` is N more steps (the budget counts them so): a resumed baby's age must not shrink
    what `auto` weighs the warm-up against."""
    import school.tutor as tutor_module
    from school.options import TrainOptions
    from school.tutor import Tutor

    options = TrainOptions(
        library=str(small_library), brain="transformer", preset="tiny", vocab_size=300,
        threads=1, precision="fp32", compile="off",
    )  # fmt: skip
    small = dict(dim=32, n_layers=1, n_heads=2, max_seq_len=16)
    first = Tutor(options, brain_overrides=small)
    first.prepare()
    for _ in range(3):
        first.train_step()
    first.save("manual")
    asked: list[int | None] = []

    def record(model, value, device, steps_left=None, **kwargs):
        asked.append(steps_left)
        return model

    monkeypatch.setattr(tutor_module, "maybe_compile", record)
    options.steps = 1000
    again = Tutor(options, brain_overrides=small)
    again.prepare()
    assert again.step == 3 and asked == [1000]
