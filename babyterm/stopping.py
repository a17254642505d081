"""How `babyterm train` and `serve` stop: Ctrl+C, SIGTERM and SIGHUP all stop cleanly (train saves first)
and exit 0; a second one quits at once."""

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
def stop_on_signals(stop: Callable[[], None], saves: bool = True) -> Iterator[None]:
    """Within the block, the first stop signal calls `stop()` (the trainer saves, then returns), and
    says whether it is saving meanwhile (a server, `saves=False`, has nothing to save).

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
        doing, rest = ("saving", "without saving") if saves else ("stopping", "at once")
        print(f"\n{doing}… ({name}; {again} again to quit {rest})", file=sys.stderr)
        stop()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
