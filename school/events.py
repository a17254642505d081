"""Typed events the tutor emits: the same objects feed the CLI, the app and the JSONL run log."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Event:
    """Base of every event. `kind` names it in logs and on the wire; `step` is the training step."""

    kind: ClassVar[str] = "event"
    step: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the kind."""
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class StepEvent(Event):
    """One logged training step."""

    kind: ClassVar[str] = "step"
    loss: float
    lr: float
    grad_norm: float
    accuracy: float  # fraction of next-token guesses that were right in this batch
    tokens_seen: int
    tokens_per_s: float
    elapsed_s: float  # training time of this baby, all runs together
    pixel_pred: RGB
    pixel_target: RGB


@dataclass(frozen=True)
class EvalEvent(Event):
    """Validation loss and bits per byte."""

    kind: ClassVar[str] = "eval"
    val_loss: float
    val_bpb: float
    train_loss: float
    """The running mean of the logged steps' training loss since the last eval (dropout on)."""
    train_bpb: float | None = None
    """Bits per byte on fixed training windows in the same eval pass as val_bpb (no dropout): the
    gap between the two is memorising. None in logs written before it was measured."""


@dataclass(frozen=True)
class PlateauEvent(Event):
    """Held-out scores stopped improving: the baby has learned what it can from this text.

    The tutor has adapted (learning rate ×`lr_scale`, weight decay now `weight_decay`) and trains
    on; its best self (step `best_step`, `best_bpb` held-out bits/byte) is kept, and where the live
    weights had become worse than it, training went back to it (`returned`).
    """

    kind: ClassVar[str] = "plateau"
    best_step: int
    best_bpb: float
    evals: int  # evaluations in a row without a new best
    lr_scale: float
    weight_decay: float
    returned: bool = False
    """The live weights were set back to the best self's: what it learned by heart since is gone."""

    @property
    def message(self) -> str:
        """The plain words the CLI and the app say."""
        since = (
            "it went back to that best self, forgetting what it had learned by heart since, and"
            if self.returned
            else "meanwhile it"
        )
        return (
            f"it has learned what it can from this text: held-out scores have not improved for "
            f"{self.evals} evaluations (best {self.best_bpb:.3f} bits/byte at step {self.best_step:,}, "
            f"kept as its best self). Give it more writing to learn more; {since} learns more "
            f"gently (learning rate ×{self.lr_scale:g}, weight decay {self.weight_decay:.3g})."
        )


@dataclass(frozen=True)
class GuessEvent(Event):
    """A short sampled continuation of a training snippet next to the truth."""

    kind: ClassVar[str] = "guess"
    prompt: str
    guess: str
    truth: str
    match: float  # fraction of guessed tokens equal to the true tokens


@dataclass(frozen=True)
class ScribeEvent(Event):
    """The scribe's comment on a guess."""

    kind: ClassVar[str] = "scribe"
    mood: str
    line: str
    guess: str
    truth: str


@dataclass(frozen=True)
class PixelEvent(Event):
    """The baby's colour: what it predicts about itself and the metabolism it aims for."""

    kind: ClassVar[str] = "pixel"
    pred: RGB
    target: RGB
    loss_ratio: float  # current loss / running average (red)
    trend: float  # relative fall of the loss average, >0 is improving (green)
    accuracy: float  # blue
    pulse: float  # slow time pulse in [0, 1] (brightness)


@dataclass(frozen=True)
class SaveEvent(Event):
    """A checkpoint reached disk."""

    kind: ClassVar[str] = "save"
    path: str
    reason: str  # autosave | manual | stop | milestone | best (the best self, not a checkpoint)
    seconds: float


@dataclass(frozen=True)
class ErrorEvent(Event):
    """Something went wrong; `fatal` means training stopped."""

    kind: ClassVar[str] = "error"
    message: str
    fatal: bool = False


class TrainerState(StrEnum):
    """What a trainer is doing. A StateEvent carries the value, so logs hold these plain strings.

    (A request on its way, such as the app's "pausing…", is the app's to show, not a state.)
    """

    STARTING = "starting"
    TRAINING = "training"
    PAUSED = "paused"
    SAVING = "saving"
    STOPPED = "stopped"
    WATCHING = "watching"
    """An observer following a baby that trains elsewhere."""


@dataclass(frozen=True)
class StateEvent(Event):
    """The trainer's state changed: a TrainerState value."""

    kind: ClassVar[str] = "state"
    state: str
    detail: str = ""


@dataclass(frozen=True)
class ProgressEvent(Event):
    """Start-up work the user waits for (tokenizer training, corpus encoding)."""

    kind: ClassVar[str] = "progress"
    task: str
    done: float  # fraction in [0, 1]
    detail: str = ""


@dataclass(frozen=True)
class ChatEvent(Event):
    """A piece of a chat reply; `final` closes the reply and carries its whole text."""

    kind: ClassVar[str] = "chat"
    reply_id: str
    text: str
    final: bool = False
    prompt: str = ""
    weights: str = "live"  # which weights answered: "live" or a milestone name
    role: str = "baby"  # "baby" for a reply, "correction" when a correction became training text
    tokens: list[dict[str, Any]] = field(default_factory=list)  # per-token insight (issue 4)
    source: str = "app"  # who asked: "app", or "http" for an outside client (babyterm serve)


@dataclass(frozen=True)
class InsightEvent(Event):
    """What the brain looked at when it chose one token of a reply (answer to an `attend` command).

    For the transformer, `layers` holds each layer's heads' weights over the context, (L, H, S),
    and `mean` their average; for babyllm, `windows` holds window sizes, mix, gates and emphasis.
    """

    kind: ClassVar[str] = "insight"
    reply_id: str
    index: int
    context: list[str]  # the text piece of each position the token could look at
    mean: list[float]
    emphasis: list[float]  # the boost (multiplier) each position got; 1 = none
    layers: list[list[list[float]]] = field(default_factory=list)
    windows: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RacePointEvent(Event):
    """One racer's held-out bits per byte after `seconds` of its own training (school.race.RacePoint)."""

    kind: ClassVar[str] = "race_point"
    brain: str
    seconds: float
    val_bpb: float


@dataclass(frozen=True)
class RaceAnswerEvent(Event):
    """One racer's greedy answer to the race's prompt, once the race is over (school.race.RaceAnswer)."""

    kind: ClassVar[str] = "race_answer"
    brain: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class XRayEvent(Event):
    """An x-ray (school.xray.XRay.to_dict()) in answer to XRayRequest `request_id`; `error` if none."""

    kind: ClassVar[str] = "xray"
    request_id: str
    xray: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        # shallow: the x-ray is JSON-ready already, and asdict would copy its ~10^6 numbers one by one
        return {
            "kind": self.kind,
            "step": self.step,
            "request_id": self.request_id,
            "xray": self.xray,
            "error": self.error,
        }


@dataclass(frozen=True)
class TaughtEvent(Event):
    """A taught steer's token: its probability where it was steered, when taught and `steps` later."""

    kind: ClassVar[str] = "taught"
    reply_id: str
    token_id: int
    piece: str
    before: float
    after: float | None = None
    """None while the steps are still to come."""
    steps: int = 0


@dataclass(frozen=True)
class ServeEvent(Event):
    """The HTTP server (babyterm serve) started on `url`, stopped (url ""), or could not (`error`)."""

    kind: ClassVar[str] = "serve"
    url: str
    error: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        StepEvent,
        EvalEvent,
        PlateauEvent,
        GuessEvent,
        ScribeEvent,
        PixelEvent,
        SaveEvent,
        ErrorEvent,
        StateEvent,
        ProgressEvent,
        ChatEvent,
        InsightEvent,
        RacePointEvent,
        RaceAnswerEvent,
        XRayEvent,
        TaughtEvent,
        ServeEvent,
    )
}


_SCALARS: dict[str, tuple[type, ...]] = {
    # numbers.*, not int/float: a numpy scalar that slipped into an event is still a number
    "int": (numbers.Integral,),
    "float": (numbers.Real,),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
}


def fits(annotation: str, value: Any) -> bool:
    """Whether a value read back from JSON is what a field's annotation ("int | None", ...) says, for
    events and commands alike: an int passes for a float, a bool only for a bool. Containers are not
    looked into: their readers take them defensively."""
    if annotation == "RGB":
        return (
            isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, numbers.Real) for v in value)
        )
    parts = [part.strip() for part in annotation.split("|")]
    if any(part not in _SCALARS for part in parts):
        return True
    allowed = tuple(t for part in parts for t in _SCALARS[part])
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict()` output (as read from a log or a queue).

    Raises KeyError for an unknown kind and TypeError for a missing field or one of the wrong type,
    so a damaged log line is refused here rather than in whatever would render it.
    """
    data = dict(data)
    cls = EVENT_TYPES[data.pop("kind")]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in fields}
    for k in ("pixel_pred", "pixel_target", "pred", "target"):
        if k in kwargs and isinstance(kwargs[k], list):
            kwargs[k] = tuple(kwargs[k])
    for name, value in kwargs.items():
        if not fits(str(fields[name].type), value):
            raise TypeError(f"{cls.kind} event: {name} is {type(value).__name__}, not {fields[name].type}")
    return cls(**kwargs)
