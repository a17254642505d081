"""torch.compile where it pays: `--compile auto|on|off`, a silent fallback, and the warm-up timed apart."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import torch

COMPILE_MODES = ("auto", "on", "off")


def compile_mode(value: bool | str | None) -> str:
    """The mode a TrainOptions.compile value asks for: True/False (older callers) are on/off."""
    if value is True:
        return "on"
    if value is False or value is None:
        return "auto"
    if value not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {value!r}: choose {', '.join(COMPILE_MODES)}")
    return value


AUTO_MIN_STEPS = 300
"""auto leaves runs shorter than this eager: the warm-up (15-25 s on 2 cores, a few seconds once
inductor's cache in the temp folder holds the step) would cost more than a short run gains."""

AUTO_MIN_MINUTES = 2.0
"""A 1-minute run on 1 MB measured 403 compiled steps against 420 eager (a 12 s warm-up for a 1.33x
step), so auto leaves runs under 2 minutes eager."""

ENV = "BABYTERM_COMPILE"
"""on or off here decides what `auto` means (the test suite sets off: every test would compile)."""


def cpp_compiler() -> str | None:
    """The C++ compiler inductor's CPU kernels need, if there is one on PATH."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and (found := shutil.which(name)):
            return found
    return None


def compile_wanted(
    value: bool | str | None,
    device: torch.device,
    steps_left: int | None = None,
    minutes: float | None = None,
) -> bool:
    """on: always try; off: never; auto: only where compiling was measured to gain.

    Measured (README, speed): on CPU the compiled step is 1.3-1.45x the eager one at the tiny and
    recipe sizes, since inductor fuses the norms, rotations, SwiGLU and casts between the matmuls.
    So auto compiles on a CPU with a C++ compiler, for runs long enough to repay the warm-up
    (`steps_left`, `minutes`: this run's limits, None when open-ended). On CUDA and MPS nothing
    has been measured (no GPU was lent), so auto stays eager there.
    """
    mode = compile_mode(value)
    if mode == "auto" and os.environ.get(ENV) in ("on", "off"):
        mode = os.environ[ENV]
    if mode != "auto":
        return mode == "on"
    if device.type != "cpu" or cpp_compiler() is None:
        return False
    if steps_left is not None and steps_left < AUTO_MIN_STEPS:
        return False
    return minutes is None or minutes >= AUTO_MIN_MINUTES


class Compiled:
    """A module run through torch.compile, or eagerly if compiling fails.

    Compilation happens at the first call (minutes on a small CPU, which is why the tutor's first
    screen must not wait for it); `on_warmup(seconds)` hears how long that call took, apart from
    the steady steps. Any failure there (no C compiler, an op the compiler does not support) is
    reported once through `on_fallback(message)` and the eager module serves from then on.
    """

    def __init__(
        self,
        module: Callable[..., Any],
        on_warmup: Callable[[float], None] | None = None,
        on_fallback: Callable[[str], None] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.eager = module
        self.on_warmup, self.on_fallback, self.on_start = on_warmup, on_fallback, on_start
        self.fn: Callable[..., Any] | None = None
        self.warm = False
        self.calls = 0
        try:
            self.fn = torch.compile(module)
        except Exception as e:  # torch.compile itself refuses (an unsupported Python, say)
            self._fall_back(e)

    def backward_failed(self, e: BaseException) -> bool:
        """A backward through the compiled step failed. Inductor compiles the backward at the
        first one, so before a second call (a step is forward then backward: a second forward
        means the first backward ran) it is taken for a compile failure: serve eagerly from now
        on, say so, and return True for the caller to run its step again. Later: the step's own."""
        if self.fn is None or self.calls > 1:
            return False
        self._fall_back(e)
        return True

    def _fall_back(self, e: BaseException) -> None:
        self.fn = None
        if self.on_fallback is not None:
            self.on_fallback(f"torch.compile failed ({type(e).__name__}: {str(e)[:120]}); running eagerly")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            return self.eager(*args, **kwargs)
        self.calls += 1
        if self.warm:
            return self.fn(*args, **kwargs)
        if self.on_start is not None:
            self.on_start()
        start = time.perf_counter()
        try:
            out = self.fn(*args, **kwargs)
        except Exception as e:
            self._fall_back(e)
            return self.eager(*args, **kwargs)
        self.warm = True
        if self.on_warmup is not None:
            self.on_warmup(time.perf_counter() - start)
        return out


def maybe_compile(
    module: Callable[..., Any],
    value: bool | str | None,
    device: torch.device,
    on_warmup: Callable[[float], None] | None = None,
    on_fallback: Callable[[str], None] | None = None,
    steps_left: int | None = None,
    minutes: float | None = None,
    on_start: Callable[[], None] | None = None,
) -> Callable[..., Any]:
    """`module` itself, or a Compiled wrapper of it where compile_wanted says so."""
    if not compile_wanted(value, device, steps_left, minutes):
        return module
    return Compiled(module, on_warmup, on_fallback, on_start)
