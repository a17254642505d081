"""Tests for the palette and the training lines: graded stats in their band's colour, plain in a pipe."""

from __future__ import annotations

import re

from rich.style import Style

from babyterm.lines import eval_line, event_line, plain, step_line
from babyterm.palette import BAND_STYLES, band_style
from school.calligraphist import ALL_BANDS, BANDS, NEUTRAL, NEW_BEST, NEW_WORST, Band, Calligraphist
from school.events import EvalEvent, SaveEvent, StepEvent


def _step(loss: float = 4.2131, step: int = 1200) -> StepEvent:
    return StepEvent(
        step=step,
        loss=loss,
        lr=3e-4,
        grad_norm=0.84,
        accuracy=0.312,
        tokens_seen=1000,
        tokens_per_s=12345.0,
        elapsed_s=10.0,
        pixel_pred=(0.1, 0.2, 0.3),
        pixel_target=(0.4, 0.5, 0.6),
    )


def test_every_band_has_its_own_drawable_style() -> None:
    assert set(BAND_STYLES) == {b.name for b in ALL_BANDS}
    assert len({band_style(b) for b in ALL_BANDS}) == len(ALL_BANDS)
    for b in ALL_BANDS:
        Style.parse(band_style(b))  # raises on a style Rich cannot draw
    assert band_style(NEW_BEST) == "bold #ffd700" and band_style(NEW_WORST) == "bold red"
    assert band_style(Band("unheard of", 99)) == band_style(NEUTRAL)


def test_step_line_reads_well_and_colours_the_loss() -> None:
    c = Calligraphist()
    for i in range(20):
        c.observe("loss", 5.0 + i / 10)
    text = step_line(c, _step(loss=4.2131))
    # a training loss at its lowest: the top band, but no ★ (records are for held-out figures)
    assert text.plain == "step   1200  loss 4.213  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s"
    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles["4.213"] == band_style(BANDS[0])
    assert styles["step   1200"] == "dim"
    assert c.best("loss") == 4.2131  # step_line observed it
    again = step_line(c, _step(loss=4.0), observe=False)
    assert c.best("loss") == 4.2131 and "4.000" in again.plain  # graded, not recorded


def test_eval_lines_star_a_new_held_out_best() -> None:
    c = Calligraphist()
    for i in range(20):
        eval_line(c, EvalEvent(step=i, val_loss=4.0 + i / 10, val_bpb=1.5 + i / 10, train_loss=4.0))
    text = eval_line(c, EvalEvent(step=30, val_loss=3.0, val_bpb=1.2, train_loss=1.0))
    assert text.plain == "eval     30  held-out 1.200 bpb ★  val_loss 3.000 ★  train 1.000"
    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles["1.200 bpb ★"] == band_style(NEW_BEST)


def test_eval_and_plain_lines() -> None:
    c = Calligraphist()
    event = EvalEvent(step=1200, val_loss=3.9121, val_bpb=1.2344, train_loss=4.01)
    assert eval_line(c, event).plain == "eval   1200  held-out 1.234 bpb  val_loss 3.912  train 4.010"
    assert plain(_step()) == "step   1200  loss 4.213  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s"
    assert plain(event) == eval_line(c, event, observe=False).plain
    save = SaveEvent(step=7, path="/tmp/x\ny", reason="manual", seconds=0.25)
    line = plain(save)
    assert line.startswith("save") and "manual" in line and "\n" not in line
    assert event_line(c, save).plain == line and str(event_line(c, save).style) == "dim"
    assert not re.search(r"\x1b", plain(_step()))
