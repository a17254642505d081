"""How the baby is asked to reply: sampling settings set by /commands, and their one-line summary
(textual-free: the chat pane and `babyterm chat` both keep one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from school.commands import Chat
from school.sampling_limits import LIMITS, SettingError
from school.weights import LIVE, parse_weights
from soul.best_self import BEST, read_best
from soul.milestones import list_milestones

_ASKED = Chat(id="", text="")


@dataclass
class ChatSettings:
    """What every chat command carries; the defaults are the Chat command's (school.commands, which
    holds them equal to brain.generate.Sampling's without importing torch into the app)."""

    temperature: float = _ASKED.temperature
    """0 is greedy: the most likely token every time."""
    top_k: int = _ASKED.top_k or 0
    """0 turns it off."""
    top_p: float | None = _ASKED.top_p
    repetition_penalty: float = _ASKED.repetition_penalty
    max_tokens: int = _ASKED.max_tokens
    seed: int | None = _ASKED.seed
    min_p: float | None = _ASKED.min_p
    """Keep only tokens at least this share of the likeliest's probability; None is off."""
    dynatemp_range: float = _ASKED.dynatemp_range
    """> 0: the temperature moves within temperature ± range with the baby's uncertainty."""
    dynatemp_exponent: float = _ASKED.dynatemp_exponent
    emphasis: float = _ASKED.emphasis
    """Strength of words marked *like this* in a message (2 doubles their attention)."""
    weights: int | str | None = None
    """The milestone step that answers, "best" for the best self, or None for the live weights."""

    def command_fields(self) -> dict[str, Any]:
        """The fields of a Chat command (school.commands) besides its id and text."""
        fields = dataclasses.asdict(self)
        fields["weights"] = "live" if self.weights is None else self.weights
        return fields

    def summary(self) -> str:
        """Short enough for a narrow pane: what is on, leaving out what is off or neutral (/help spells
        each one out)."""
        parts = ["greedy" if self.temperature == 0 else f"temp {_num(self.temperature)}"]
        if self.temperature > 0 and self.top_k:
            parts.append(f"k {self.top_k}")
        if self.temperature > 0 and self.top_p is not None:
            parts.append(f"p {_num(self.top_p)}")
        if self.temperature > 0 and self.min_p is not None:
            parts.append(f"min-p {_num(self.min_p)}")
        if self.dynatemp_range > 0:
            parts.append(f"dyn ±{_num(self.dynatemp_range)}^{_num(self.dynatemp_exponent)}")
        if self.repetition_penalty != 1.0:
            parts.append(f"rep {_num(self.repetition_penalty)}")
        parts.append(f"max {self.max_tokens}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.emphasis != _ASKED.emphasis:
            parts.append(f"emph ×{_num(self.emphasis)}")
        return " · ".join(parts)

    def set(self, name: str, arg: str) -> str:
        """Apply `/name arg`; returns what it now is, raises SettingError (changing nothing) if bad."""
        field, parse, _ = SETTINGS[name]
        value = parse(arg.strip().lower())
        if name == "dynatemp":  # two numbers, one command: range and exponent go together
            self.dynatemp_range, self.dynatemp_exponent = value
            return "dynamic temperature " + dynatemp_text(self)
        setattr(self, field, value)
        return f"{field.replace('_', ' ')} {'off' if value is None else _num(value)}"


def _num(value: float) -> str:
    return f"{value:g}"


def _setting(field: str, off: Any = ...) -> Callable[[str], Any]:
    """A parser of `field`'s values (school.sampling_limits); `off` is what the word "off" means."""
    limit = LIMITS[field]

    def parse(arg: str) -> Any:
        if off is not ... and arg in ("off", "none"):
            return off
        return limit.parse(arg, or_off=off is not ...)

    return parse


def _top_p(arg: str) -> float | None:
    value = _setting("top_p", off=None)(arg)
    return None if value == 1.0 else value  # keeping 100% of the mass is no cut at all


def _min_p(arg: str) -> float | None:
    value = _setting("min_p", off=None)(arg)
    return None if value == 0.0 else value  # no token is below 0% of the likeliest: no cut


def _dynatemp(arg: str) -> tuple[float, float]:
    """`/dynatemp RANGE EXP` (EXP defaults to 1), or `/dynatemp off`."""
    words = arg.split()
    if words in (["off"], ["none"], ["0"]):
        return 0.0, _ASKED.dynatemp_exponent
    if len(words) not in (1, 2):
        raise SettingError(f"/dynatemp takes a range and an exponent, like /dynatemp 0.5 1, not {arg!r}")
    spread = LIMITS["dynatemp_range"].parse(words[0])
    exponent = LIMITS["dynatemp_exponent"].parse(words[1] if len(words) == 2 else "1")
    return spread, exponent


def dynatemp_text(settings: ChatSettings) -> str:
    """What /dynatemp is now: off, or its range and exponent."""
    if settings.dynatemp_range <= 0:
        return "off"
    return f"{_num(settings.dynatemp_range)} {_num(settings.dynatemp_exponent)}"


SETTINGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    # /name: (field, parser, what it does)
    "temp": ("temperature", _setting("temperature"), "0 = greedy"),
    "topk": ("top_k", _setting("top_k", off=0), "0 = off"),
    "topp": ("top_p", _top_p, "0-1, or off"),
    "minp": ("min_p", _min_p, "0-1, or off"),
    "dynatemp": ("dynatemp_range", _dynatemp, "RANGE EXP|off"),
    "rep": ("repetition_penalty", _setting("repetition_penalty"), ">1: fewer repeats"),
    "max": ("max_tokens", _setting("max_tokens"), "reply tokens"),
    "seed": ("seed", _setting("seed", off=None), "number, or off"),
    "emph": ("emphasis", _setting("emphasis"), "*marked* words"),
}

COMMANDS: tuple[tuple[str, str], ...] = (
    ("/temp 0.8", "temperature; 0 = greedy"),
    ("/topk 40", "sample from the k likeliest tokens; 0 = off"),
    ("/topp 0.9|off", "sample from the likeliest p of the probability mass"),
    ("/minp 0.05|off", "drop tokens less likely than this share of the likeliest"),
    ("/dynatemp 0.5 1", "temperature ± range, higher when the baby is unsure (EXP shapes it; off)"),
    ("/rep 1.2", "repetition penalty; above 1 discourages repeats"),
    ("/max 200", "longest reply, in tokens"),
    ("/seed 42|off", "a fixed seed: the same message gets the same reply"),
    ("/emph 3", "strength for words marked *like this* in a message"),
    ("/reset", "sampling settings back to their defaults"),
    ("/conf", "colour replies by the baby's confidence in each token"),
    ("/inspect", "pick a token of a reply: alternatives and attention"),
    ("/steps", "list the milestones (earlier selves)"),
    ("/step 1000", "talk to the baby as it was at that milestone"),
    ("/step best", "talk to its best self (its best held-out score)"),
    ("/live", "talk to the live weights again"),
    ("/correct TEXT", "correct the last reply (it becomes training text)"),
    ("/export chat.md", "write the whole chat history as Markdown (--since 2h: only lately)"),
    ("/help", "these commands, with the current values"),
)
"""Every chat command with an example, for /help and the help screen."""


def setting_rows(settings: ChatSettings) -> list[tuple[str, str]]:
    """Each sampling /command with its current value, and what it does."""
    rows = []
    for name, (field, _, what) in SETTINGS.items():
        value = getattr(settings, field)
        if name == "dynatemp":
            rows.append((f"/{name} {dynatemp_text(settings)}", what))
            continue
        rows.append(
            (f"/{name} {'off' if value is None or (name == 'topk' and not value) else _num(value)}", what)
        )
    return rows


def help_lines(settings: ChatSettings, confidence: bool) -> str:
    """/help: each command with its current value, in two columns narrow enough for the chat pane."""
    rows = setting_rows(settings)
    target = weights_label(settings.weights)
    rows += [
        (f"/conf {'on' if confidence else 'off'}", "confidence colours"),
        ("/step N", f"now {target}; /steps; /step best"),
        ("/live", "the live weights"),
        ("/inspect", "look inside a reply"),
        ("/reset", "default sampling"),
        ("/correct T", "fix the last reply"),
        ("/export F", "history to Markdown"),
    ]
    return "\n".join(f"{left:<11} {right}" for left, right in rows)


def weights_label(weights: int | str | None) -> str:
    """What the chat's title and /help call the weights that answer."""
    if weights is None:
        return "live"
    return "best self" if weights == BEST else f"step {weights:,}"


def milestone_step(folder: Path, arg: str) -> int | str:
    """The milestone `/step arg` names ("best": the best self), or a SettingError naming those there are."""
    steps = list_milestones(folder)
    have = ", ".join(f"{s:,}" for s in steps) or "none yet"
    try:
        step = parse_weights(arg)
    except ValueError:
        raise SettingError(f"/step needs a step number or best (milestones: {have})") from None
    if step == BEST:
        if read_best(folder) is None:
            raise SettingError("no best self yet: it is kept at the first evaluation")
        return BEST
    if step == LIVE:
        raise SettingError("/live talks to the live weights")
    if step not in steps:
        raise SettingError(f"no milestone at step {step:,} (milestones: {have})")
    return step


PANE_ONLY = ("conf", "inspect", "correct", "export")
"""Chat pane commands that need the app (a reply to inspect, a trainer to teach, the pane's history)."""


def terminal_command(settings: ChatSettings, defaults: ChatSettings, line: str) -> str:
    """A /command typed to `babyterm chat`: the sampling ones change `settings` (/reset: back to
    `defaults`, the flags'), /help lists them; returns what to print, a refusal in one line."""
    name, _, arg = line.strip()[1:].partition(" ")
    name = name.lower()
    if name in SETTINGS:
        try:
            return settings.set(name, arg)
        except SettingError as e:
            return f"babyterm: {e}"
    if name == "reset":
        for field in dataclasses.fields(ChatSettings):
            setattr(settings, field.name, getattr(defaults, field.name))
        return "sampling back to the flags' settings: " + settings.summary()
    if name == "help":
        rows = [*setting_rows(settings), ("/reset", "back to the flags' settings")]
        return "\n".join(f"{left:<11} {right}" for left, right in rows)
    if name in ("step", "steps", "live"):
        return f"babyterm: /{name} works in the app's chat pane; here, choose the weights with --step"
    if name in PANE_ONLY:
        return f"babyterm: /{name} works in the app's chat pane; here: /help lists what works"
    return f"babyterm: no command /{name}: /help lists them (start a line with a space to say it)"
