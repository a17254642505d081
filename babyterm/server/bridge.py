"""The server's line to the baby: an HTTP request becomes a Chat command on the host's queue.

The host is whoever already serves chat between its own work: the tutor (live weights, between
training steps), or the observer (`babyterm serve` on its own: the newest checkpoint, reloaded as
new ones land). Its ChatEvents come back on its thread and are handed to the request's event loop;
replies take turns in the ReplySlot, and a reply whose client left is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from school.commands import CancelChat, Chat, Command
from school.events import ChatEvent, Event, StateEvent, TrainerState
from school.framing import STOP
from school.tokenizer import encode

from .queue import ReplySlot

MAX_TOKENS = 512
"""The most tokens one reply may ask for; more is clamped to this."""
SILENCE_S = 60.0
"""A reply that hears nothing for this long is given up (the host is gone or stuck)."""
_DEFAULTS = Chat(id="", text="")


class Host(Protocol):
    """What the server needs from the tutor or the observer."""

    def send(self, command: Command) -> None: ...
    def subscribe(self, fn: Callable[[Event], None]) -> None: ...


@dataclass(frozen=True)
class Ask:
    """One request in babyterm's terms: the framed text and how to sample the reply."""

    text: str
    max_tokens: int = _DEFAULTS.max_tokens
    temperature: float = _DEFAULTS.temperature
    top_p: float | None = _DEFAULTS.top_p
    top_k: int | None = _DEFAULTS.top_k
    repetition_penalty: float = _DEFAULTS.repetition_penalty
    seed: int | None = None
    stops: tuple[str, ...] = ()


class HostGone(Exception):
    """The host stopped, or stopped answering, before the reply was whole."""


class StopCutter:
    """Cuts streamed text at the first stop string, holding back a tail that may begin one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(dict.fromkeys(s for s in (*STOP, *stops) if s))
        self.text, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> str:
        """The text that may go out now."""
        self.text += piece
        ends = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if ends:
            self.text, self.stopped = self.text[: min(ends)], True
            return self.close()
        held = max(
            (k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])),
            default=0,
        )
        safe = max(self.sent, len(self.text) - held)
        out, self.sent = self.text[self.sent : safe], safe
        return out

    def close(self) -> str:
        out, self.sent = self.text[self.sent :], len(self.text)
        return out


class ReplyStream:
    """One reply as it arrives: iterate `pieces()`; then `tokens` and `finish_reason` are known."""

    def __init__(self, bridge: Bridge, reply_id: str, ask: Ask, began: Callable[[], None]) -> None:
        self.bridge, self.id, self.ask = bridge, reply_id, ask
        self.began: Callable[[], None] | None = began  # told at the host's first word
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.cutter = StopCutter(ask.stops)
        self.tokens = 0
        self.done = False
        self.weights = ""

    def hear(self, item: Any) -> None:
        """Called on the host's thread."""
        self.loop.call_soon_threadsafe(self.inbox.put_nowait, item)

    async def _next(self, silence: float) -> ChatEvent:
        try:
            item = await asyncio.wait_for(self.inbox.get(), silence)
        except TimeoutError:
            raise HostGone("the baby stopped answering") from None
        if self.began is not None:
            self.began()
            self.began = None
        if not isinstance(item, ChatEvent):
            raise HostGone("the baby stopped")
        return item

    async def pieces(self) -> AsyncIterator[str]:
        """The reply's text in pieces, cut at the first stop string."""
        while not self.done:
            event = await self._next(self.bridge.silence_s)
            if event.final:
                self._finish(event)
                if rest := self.cutter.close():
                    yield rest
                return
            if out := self.cutter.feed(event.text):
                yield out
            if self.cutter.stopped:
                self.bridge.host.send(CancelChat(self.id))
                with contextlib.suppress(HostGone):  # the count of tokens is all that is left to hear
                    while not (event := await self._next(5.0)).final:
                        pass
                    self._finish(event)
                return

    def _finish(self, event: ChatEvent) -> None:
        self.done, self.tokens, self.weights = True, len(event.tokens), event.weights

    @property
    def text(self) -> str:
        return self.cutter.text

    @property
    def finish_reason(self) -> str:
        return "length" if not self.cutter.stopped and self.tokens >= self.ask.max_tokens else "stop"


class Bridge:
    """Asks the host for replies, one at a time (see the module docstring)."""

    def __init__(
        self,
        host: Host,
        name: str,
        weights: str | int = "live",
        duty: float = 1.0,
        silence_s: float = SILENCE_S,
    ) -> None:
        self.host, self.name, self.weights = host, name, weights
        self.slot = ReplySlot(duty)
        self.silence_s = silence_s
        self._params = 0
        self._streams: dict[str, ReplyStream] = {}
        host.subscribe(self._hear)

    def _hear(self, event: Event) -> None:
        if isinstance(event, ChatEvent) and event.role == "baby":
            if (stream := self._streams.get(event.reply_id)) is not None:
                stream.hear(event)
        elif isinstance(event, StateEvent) and event.state == TrainerState.STOPPED.value:
            for stream in list(self._streams.values()):
                stream.hear(None)

    def count(self, text: str) -> int:
        """Tokens the prompt takes (0 while the host has no tokenizer yet)."""
        try:
            return len(encode(self.host.tokenizer, text + "\n"))  # type: ignore[attr-defined]
        except Exception:  # a trainer still preparing has no tokenizer: the count is a courtesy
            return 0

    def params(self) -> int:
        """The brain's parameter count (0 while the host has no brain yet)."""
        if not self._params:
            try:
                self._params = int(self.host.model.num_params())  # type: ignore[attr-defined]
            except Exception:
                return 0
        return self._params

    @contextlib.asynccontextmanager
    async def reply(self, ask: Ask) -> AsyncIterator[ReplyStream]:
        """Wait for the slot, ask, and yield the reply's stream; leaving early cancels the reply."""
        async with self.slot.turn() as turn:
            reply_id = f"http-{uuid.uuid4().hex[:16]}"
            stream = ReplyStream(self, reply_id, ask, turn.began)
            self._streams[reply_id] = stream
            self.host.send(
                Chat(
                    id=reply_id,
                    text=ask.text,
                    max_tokens=max(1, min(ask.max_tokens, MAX_TOKENS)),
                    temperature=ask.temperature,
                    top_k=ask.top_k,
                    top_p=ask.top_p,
                    repetition_penalty=ask.repetition_penalty,
                    seed=ask.seed,
                    weights=self.weights,
                    source="http",
                )
            )
            try:
                yield stream
            finally:
                del self._streams[reply_id]
                if not stream.done:
                    self.host.send(CancelChat(reply_id))
