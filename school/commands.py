"""Typed commands the trainer takes (pause, chat, ...): the mirror of school.events, torch-free.

Commands cross the trainer's queue as `to_dict()` output and are rebuilt by `command_from_dict`,
which refuses an unknown kind, a missing or unknown field, or a field of the wrong type with one
clear line (CommandError), never a crash.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from school.events import fits


class CommandError(ValueError):
    """A command that cannot be taken: an unknown kind, a missing field, a field of the wrong type."""


@dataclass(frozen=True)
class Command:
    """Base of every command. `kind` names it on the queue."""

    kind: ClassVar[str] = "command"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the kind."""
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Pause(Command):
    """Stop training between steps; commands (chat included) are still served."""

    kind: ClassVar[str] = "pause"


@dataclass(frozen=True)
class Resume(Command):
    kind: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Save(Command):
    """Write a checkpoint now."""

    kind: ClassVar[str] = "save"


@dataclass(frozen=True)
class Stop(Command):
    """Save and stop (a reply in progress ends first)."""

    kind: ClassVar[str] = "stop"


@dataclass(frozen=True)
class Chat(Command):
    """Answer `text`: ChatEvent pieces under `id`, the last one final.

    The sampling defaults are brain.generate.Sampling's (this module stays torch-free, so they are
    written here and a test holds them equal).
    """

    kind: ClassVar[str] = "chat"
    id: str
    text: str
    max_tokens: int = 120
    temperature: float = 0.8
    """0 is greedy: the most likely token every time."""
    top_k: int | None = 40
    """0 or None turns it off."""
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    min_p: float | None = None
    """Keep only tokens at least min_p times as likely as the likeliest; None turns it off."""
    dynatemp_range: float = 0.0
    """> 0: the temperature moves within temperature ± range with the candidates' entropy."""
    dynatemp_exponent: float = 1.0
    """The curve from normalised entropy to temperature (llama.cpp's dynatemp_exponent)."""
    emphasis: float = 2.0
    """Strength for words marked *like this* (2 doubles their attention)."""
    weights: str | int = "live"
    """"live", "best" (the best self), or the step of a milestone (an earlier self) that answers."""
    source: str = "app"
    """Who asks: "app" (the chat pane, the CLI) or "http" (an outside client of `babyterm serve`)."""


@dataclass(frozen=True)
class CancelChat(Command):
    """Stop reply `id` where it is (Escape)."""

    kind: ClassVar[str] = "chat_cancel"
    id: str


@dataclass(frozen=True)
class Correct(Command):
    """The user's better answer to reply `id`: it becomes training text."""

    kind: ClassVar[str] = "correct"
    id: str
    text: str


@dataclass(frozen=True)
class Attend(Command):
    """Ask what token `index` of reply `id` looked at: answered by an InsightEvent."""

    kind: ClassVar[str] = "attend"
    id: str
    index: int


@dataclass(frozen=True)
class XRayRequest(Command):
    """X-ray `text` through the brain: answered by an XRayEvent under the same `id`."""

    kind: ClassVar[str] = "xray"
    id: str
    text: str
    weights: str | int = "live"
    """"live", or the step of a milestone."""
    top_k: int = 5


@dataclass(frozen=True)
class Steer(Command):
    """Make token `index` of reply `reply_id` be `token_id` and regenerate the rest from there.

    Answered as a new reply (ChatEvents under `id`), greedy, so the same steer gives the same text.
    """

    kind: ClassVar[str] = "steer"
    id: str
    reply_id: str
    index: int
    token_id: int


@dataclass(frozen=True)
class Teach(Command):
    """A steered reply `id` becomes training text (like Correct); a TaughtEvent follows its token's
    probability from now to 10 training steps later."""

    kind: ClassVar[str] = "teach"
    id: str


@dataclass(frozen=True)
class Serve(Command):
    """Start answering HTTP clients from the trainer's process (or stop, with `stop`).

    Taken by the trainer process's relay (babyterm.serving), not by the tutor: the server is babyterm's.
    The API key comes from $BABYTERM_API_KEY, never over the queue.
    """

    kind: ClassVar[str] = "serve"
    host: str = "127.0.0.1"
    port: int = 8000
    stop: bool = False


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.kind: cls
    for cls in (
        Pause,
        Resume,
        Save,
        Stop,
        Chat,
        CancelChat,
        Correct,
        Attend,
        XRayRequest,
        Steer,
        Teach,
        Serve,
    )
}


def command_from_dict(data: Any) -> Command:
    """Rebuild a command from `Command.to_dict()` output; raises CommandError for anything else."""
    if not isinstance(data, dict):
        raise CommandError(f"a command is a dict with a kind, not {type(data).__name__}")
    data = dict(data)
    kind = data.pop("kind", None)
    cls = COMMAND_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CommandError(f"unknown command {kind!r} (known: {', '.join(COMMAND_TYPES)})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CommandError(f"{kind} command: unknown field {unknown[0]!r}")
    for f in fields.values():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in data:
            raise CommandError(f"{kind} command: {f.name} is missing")
    for name, value in data.items():
        if not fits(str(fields[name].type), value):
            raise CommandError(f"{kind} command: {name} is {type(value).__name__}, not {fields[name].type}")
    return cls(**data)
