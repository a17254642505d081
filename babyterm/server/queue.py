"""The reply slot: one reply at a time, first come first served, leaving the trainer its share.

Requests wait in arrival order; the one at the front gets the slot once the previous reply is
whole. With `duty` below 1 the slot also rests after each reply, `held × (1 − duty) / duty`
seconds (held: from the host's first word to the end of the reply), so that replies take at most
about `duty` of the wall clock and training keeps the rest, however many clients wait. A lone
request on an idle slot starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

MAX_WAITING = 100


class QueueFull(Exception):
    """More requests wait than the slot takes."""


class Turn:
    """A held slot. The holder calls `began()` when the host starts answering: the rest after it
    counts from then, so time spent waiting for the trainer to finish its step is not charged."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.start = clock()

    def began(self) -> None:
        self.start = self.clock()


class ReplySlot:
    def __init__(self, duty: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < duty <= 1:
            raise ValueError(f"duty must be in (0, 1], not {duty}")
        self.duty, self.clock = duty, clock
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._busy = False
        self._free_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Wait for the slot in arrival order, hold it for the block; a cancelled wait leaves the line."""
        if self.waiting >= MAX_WAITING:
            raise QueueFull(f"{MAX_WAITING} requests are already waiting")
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        self._wake()
        try:
            await ticket
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled():  # given the slot just as it was cancelled
                self._release(0.0)
            else:
                ticket.cancel()
                self._wake()
            raise
        turn = Turn(self.clock)
        try:
            yield turn
        finally:
            self._release(max(0.0, self.clock() - turn.start))

    def _release(self, held: float) -> None:
        self._busy = False
        self._free_at = self.clock() + held * (1 - self.duty) / self.duty
        self._wake()

    def _wake(self) -> None:
        self._timer = None
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()  # cancelled while waiting
        if self._busy or not self._waiting:
            return
        rest = self._free_at - self.clock()
        if rest > 0:
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(rest, self._wake)
            return
        self._busy = True
        self._waiting.popleft().set_result(None)
