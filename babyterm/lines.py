"""The training lines the printer and the loss stream share: steps and evals, graded stats coloured."""

from __future__ import annotations

from rich.text import Text

from babyterm.palette import QUIET, band_style
from school.calligraphist import Calligraphist
from school.events import EvalEvent, Event, StepEvent

_Part = tuple[str, str | None, float]
"""One chunk of a line: its text, the stat it shows (None: not graded) and the stat's value."""


def _rate(per_s: float) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if per_s >= scale:
            return f"{per_s / scale:.1f}{suffix}"
    return f"{per_s:.0f}"


def _step_parts(e: StepEvent) -> list[_Part]:
    return [
        (f"step {e.step:>6}", None, 0.0),
        (f"loss {e.loss:.3f}", "loss", e.loss),
        (f"acc {e.accuracy * 100:.1f}%", "accuracy", e.accuracy),
        (f"lr {e.lr:.1e}", None, 0.0),
        (f"gn {e.grad_norm:.2f}", "grad_norm", e.grad_norm),
        (f"{_rate(e.tokens_per_s)} tok/s", None, 0.0),
    ]


def _eval_parts(e: EvalEvent) -> list[_Part]:
    # held-out bits per byte is the headline (the field's measure, on text it never learns from);
    # the training loss last and ungraded: on a small library it falls however little it learns
    return [
        (f"eval {e.step:>6}", None, 0.0),
        (f"held-out {e.val_bpb:.3f} bpb", "val_bpb", e.val_bpb),
        (f"val_loss {e.val_loss:.3f}", "val_loss", e.val_loss),
        *([(f"on its own text {e.train_bpb:.3f} bpb", None, 0.0)] if e.train_bpb is not None else []),
        (f"train {e.train_loss:.3f}", None, 0.0),
    ]


def step_line(calligraphist: Calligraphist, event: StepEvent, observe: bool = True) -> Text:
    """`step   1200  loss 4.213  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s`, stats coloured by band.

    With `observe` the event's stats join their histories (the usual case: each step is shown once).
    """
    return _render(calligraphist, _step_parts(event), observe)


def eval_line(calligraphist: Calligraphist, event: EvalEvent, observe: bool = True) -> Text:
    """`eval   1200  held-out 1.234 bpb  val_loss 3.912  on its own text 1.101 bpb  train 4.010`,
    held-out stats coloured by band."""
    return _render(calligraphist, _eval_parts(event), observe)


def event_line(calligraphist: Calligraphist, event: Event, observe: bool = True) -> Text:
    """Any event as one line: steps and evals graded, the rest dim."""
    if isinstance(event, StepEvent):
        return step_line(calligraphist, event, observe)
    if isinstance(event, EvalEvent):
        return eval_line(calligraphist, event, observe)
    return Text(plain(event), style=QUIET)


def _render(calligraphist: Calligraphist, parts: list[_Part], observe: bool) -> Text:
    text = Text()
    for i, (chunk, stat, value) in enumerate(parts):
        if i:
            text.append("  ")
        if stat is None:
            text.append(chunk, style=QUIET if chunk.startswith(("step", "eval")) else "")
            continue
        band = calligraphist.observe(stat, value) if observe else calligraphist.band(stat, value)
        label, _, number = chunk.partition(" ")
        number, _, unit = number.partition(" ")
        text.append(label + " ", style=QUIET)
        text.append(
            number + (unit and f" {unit}") + (band.symbol and f" {band.symbol}"), style=band_style(band)
        )
    return text


def plain(event: Event) -> str:
    """One uncoloured line for any event, for output that is not a terminal. Grades nothing."""
    if isinstance(event, StepEvent):
        parts = _step_parts(event)
    elif isinstance(event, EvalEvent):
        parts = _eval_parts(event)
    else:
        fields = {k: v for k, v in event.to_dict().items() if k not in ("kind", "step")}
        body = "  ".join(f"{k} {_short(v)}" for k, v in fields.items())
        return f"{event.kind:<5}{event.step:>7}  {body}".rstrip()
    return "  ".join(chunk for chunk, _, _ in parts)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    text = " ".join(str(value).split())  # model text may hold newlines; a log line must stay one line
    return text if len(text) <= 60 else text[:59] + "…"
