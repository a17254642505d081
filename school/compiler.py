"""torch.compile where it pays: `--compile auto|on|off`, a silent fallback, and the warm-up timed apart."""

from __future__ import annotations

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


def compile_wanted(value: bool | str | None, device: torch.device) -> bool:
    """on: always try; off: never; auto: only where compiling was measured to gain.

    Nothing has been measured to gain yet: on this project's 2-core CPUs the step is bound by its
    matmuls and the compiled step gave no gain, and no GPU was available to measure it on. So auto
    is eager everywhere until a measurement says otherwise (README, GPUs).
    """
    mode = compile_mode(value)
    return mode == "on"


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
    ) -> None:
        self.eager = module
        self.on_warmup, self.on_fallback = on_warmup, on_fallback
        self.fn: Callable[..., Any] | None = None
        self.warm = False
        try:
            self.fn = torch.compile(module)
        except Exception as e:  # torch.compile itself refuses (an unsupported Python, say)
            self._fall_back(e)

    def _fall_back(self, e: BaseException) -> None:
        self.fn = None
        if self.on_fallback is not None:
            self.on_fallback(f"torch.compile failed ({type(e).__name__}: {str(e)[:120]}); running eagerly")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            return self.eager(*args, **kwargs)
        if self.warm:
            return self.fn(*args, **kwargs)
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
) -> Callable[..., Any]:
    """`module` itself, or a Compiled wrapper of it where compile_wanted says so."""
    if not compile_wanted(value, device):
        return module
    return Compiled(module, on_warmup, on_fallback)
