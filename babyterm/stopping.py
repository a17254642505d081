"""How `babyterm train` stops: Ctrl+C, SIGTERM and SIGHUP all save and exit 0; a second one quits at once."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

# SIGHUP (a closed terminal) exists only on POSIX; Windows has SIGINT and SIGTERM.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, the first stop signal calls `stop()` (the trainer saves, then returns).

    A second signal raises KeyboardInterrupt: the user who asks twice does not wait for the save.
    The previous handlers come back when the block ends. Call from the main thread (as signal needs).
    """
    received = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal received
        received += 1
        if received > 1:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        again = "Ctrl+C" if signum == signal.SIGINT else name
        print(f"\nsaving… ({name}; {again} again to quit without saving)", file=sys.stderr)
        stop()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
