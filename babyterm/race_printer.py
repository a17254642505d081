"""What `babyterm race` prints: a line per evaluation as it comes, then the curves, fairness and answers."""

from __future__ import annotations

from typing import Any, TextIO

from babyterm.printer import clean_text
from school.race import RaceAnswer, RacePoint, RaceResult, check_brains, race
from school.rungs import RUNG_NOTES

BARS = "▁▂▃▄▅▆▇█"
PLOT_WIDTH = 40


def sparkline(values: list[float], lo: float, hi: float) -> str:
    """Low bits per byte is good, so a falling curve reads as falling bars."""
    span = max(hi - lo, 1e-9)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))] for v in values)


def resample(curve: list[RacePoint], width: int) -> list[float]:
    """At most `width` values of the curve, evenly spaced over its points."""
    if len(curve) <= width:
        return [p.val_bpb for p in curve]
    return [curve[round(i * (len(curve) - 1) / (width - 1))].val_bpb for i in range(width)]


class RacePrinter:
    """Prints a race as `school.race.race` reports it: pass `point` and `answer` as its callbacks."""

    def __init__(self, out: TextIO, brains: list[str] | None = None) -> None:
        self.out = out
        self.width = max((len(b) for b in brains or []), default=0)  # known up front: columns line up

    def _line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def point(self, p: RacePoint) -> None:
        self.width = max(self.width, len(p.brain))
        self._line(
            f"  {p.brain:<{self.width}}  {p.seconds:7.1f} s  step {p.step:>6}  {p.val_bpb:6.3f} bits/byte"
        )

    def answer(self, a: RaceAnswer) -> None:
        pass  # answers are printed together, side by side, in `summary`

    def summary(self, result: RaceResult) -> None:
        brains = list(result.train_seconds)
        w = max(len(b) for b in brains)
        curves = {b: [p for p in result.points if p.brain == b] for b in brains}
        every = [p.val_bpb for p in result.points]
        lo, hi = min(every), max(every)
        self._line()
        self._line(f"held-out bits/byte against training time ({lo:.2f} ▁ to █ {hi:.2f}; lower is better)")
        for b in brains:
            last = curves[b][-1]
            line = sparkline(resample(curves[b], PLOT_WIDTH), lo, hi)
            self._line(f"  {b:<{w}}  {line:<{PLOT_WIDTH}}  {last.val_bpb:6.3f} after {last.seconds:.1f} s")
        self._line()
        gap = result.unfairness() * 100
        shares = ", ".join(f"{b} {s:.1f} s" for b, s in result.train_seconds.items())
        self._line(f"training time: {shares} (within {gap:.1f}% of the mean)")
        self._line(f"evaluation: {result.eval_seconds:.1f} s; wall: {result.wall_seconds:.1f} s")
        if result.answers:
            self._line()
            self._line(f"each brain's answer to {clean_text(result.answers[0].prompt)!r}:")
            for a in result.answers:
                self._line(f"  {a.brain:<{w}}  {clean_text(a.answer).replace(chr(10), ' ⏎ ')}")
        self._line()
        for b in brains:
            if b in RUNG_NOTES:
                self._line(f"  {b:<{w}}  {RUNG_NOTES[b]}")
        names = ", ".join(result.babies.values())
        self._line(f"the babies are kept: chat with them as --baby {names}")


def print_race(
    library: str | None, minutes: float, brains: str, home: str | None, out: TextIO, **options: Any
) -> RaceResult:
    """What `babyterm race` runs: `brains` is the comma list of --brains; SoulError for bad input."""
    names = check_brains(brains.split(","))
    printer = RacePrinter(out, names)
    print(f"racing {', '.join(names)} for {minutes:g} min on one library and tokenizer", file=out, flush=True)
    result = race(library, minutes, names, home, on_point=printer.point, on_answer=printer.answer, **options)
    printer.summary(result)
    return result
