"""Tests for the calligraphist: percentile bands, records, and the formatted lines."""

from __future__ import annotations

import math
import random
import re

from rich.style import Style

from school.calligraphist import (
    ALL_BANDS,
    BANDS,
    NEUTRAL,
    NEW_BEST,
    NEW_WORST,
    Calligraphist,
    plain,
)
from school.events import EvalEvent, SaveEvent, StepEvent

NAMES = ["perfect", "almost perfect", "super great", "great", "good", "fine", "almost fine", "average"]
NAMES += ["meh", "bad", "worse", "wtf", "omg", "omgwtf"]


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


def _filled(stat: str, values: range | list[float], **kwargs: object) -> Calligraphist:
    c = Calligraphist(**kwargs)  # type: ignore[arg-type]
    for v in values:
        c.observe(stat, float(v))
    return c


def test_bands_are_ordered_named_and_styled() -> None:
    assert [b.name for b in BANDS] == NAMES
    assert [b.rank for b in ALL_BANDS] == list(range(16))
    assert len({b.name for b in ALL_BANDS}) == 16
    assert NEW_BEST.style == "bold #ffd700" and NEW_WORST.style == "bold red"
    for b in ALL_BANDS:
        Style.parse(b.style)  # raises on a style Rich cannot draw


def test_every_band_is_reachable_lower_is_better() -> None:
    # 140 values 0..139: value 10i+5 sits in the i-th fourteenth of the history.
    c = _filled("loss", range(140))
    for i, band in enumerate(BANDS):
        assert c.band("loss", 10 * i + 5) == band
    assert c.band("loss", -1) == NEW_BEST
    assert c.band("loss", 140) == NEW_WORST


def test_every_band_is_reachable_higher_is_better() -> None:
    c = _filled("accuracy", range(140))
    for i in range(len(BANDS)):
        assert c.band("accuracy", 10 * i + 5) == BANDS[-1 - i]
    assert c.band("accuracy", 140) == NEW_BEST
    assert c.band("accuracy", -1) == NEW_WORST


def test_a_noisy_stream_visits_every_band() -> None:
    rng = random.Random(0)
    c = Calligraphist(window=200)
    seen = {c.observe("loss", rng.gauss(4.0, 1.0)).name for _ in range(3000)}
    assert seen == {b.name for b in ALL_BANDS}


def test_short_history_is_neutral_and_records_need_history() -> None:
    c = Calligraphist()
    assert [c.observe("loss", v) for v in (5.0, 1.0, 9.0, 0.5, 10.0)] == [NEUTRAL] * 5
    assert c.observe("loss", 0.1) == NEW_BEST
    assert c.observe("loss", 0.1) in BANDS[:2]  # ties the record: near the top, not another record
    assert c.observe("loss", 99.0) == NEW_WORST


def test_flat_history_puts_its_value_in_the_middle() -> None:
    c = _filled("loss", [2.0] * 50)
    assert c.band("loss", 2.0) == NEUTRAL


def test_records_are_all_time_but_bands_follow_the_window() -> None:
    c = _filled("loss", [0.0, *range(100, 110)], window=10)  # 0.0 has left the window
    assert c.best("loss") == 0.0
    assert c.band("loss", 50) == BANDS[0]  # better than all it remembers, but not a record
    assert c.band("loss", -1) == NEW_BEST
    assert c.band("loss", 104.5) in (BANDS[6], BANDS[7])


def test_band_does_not_record_and_observe_grades_before_recording() -> None:
    c = _filled("loss", range(10))
    for _ in range(5):
        assert c.band("loss", -5) == NEW_BEST
    assert c.observe("loss", -5) == NEW_BEST
    assert c.band("loss", -5) == BANDS[0]


def test_direction_defaults_and_overrides() -> None:
    assert _filled("mystery", range(20)).band("mystery", -1) == NEW_BEST  # unknown stats: lower is better
    assert _filled("loss", range(20), lower_is_better={"loss": False}).band("loss", -1) == NEW_WORST
    assert _filled("match", range(20)).band("match", 30) == NEW_BEST


def test_non_finite_values_are_worst_and_not_recorded() -> None:
    c = _filled("loss", range(20))
    assert c.observe("loss", math.nan) == BANDS[-1]
    assert c.observe("loss", math.inf) == BANDS[-1]
    assert c.best("loss") == 0.0
    assert c.band("loss", 9.5) in (BANDS[6], BANDS[7])


def test_format_step_reads_well_and_colours_the_loss() -> None:
    c = _filled("loss", [5.0 + i / 10 for i in range(20)])
    text = c.format_step(_step(loss=4.2131))
    assert text.plain == "step   1200  loss 4.213 ★  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s"
    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles["4.213 ★"] == NEW_BEST.style
    assert c.best("loss") == 4.2131  # format_step observed it


def test_format_eval_and_plain_lines() -> None:
    c = Calligraphist()
    event = EvalEvent(step=1200, val_loss=3.9121, val_bpb=1.2344, train_loss=4.01)
    assert c.format_eval(event).plain == "eval   1200  val_loss 3.912  bpb 1.234  train 4.010"
    assert plain(_step()) == "step   1200  loss 4.213  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s"
    assert c.plain(event) == c.format_eval(event, observe=False).plain
    save = SaveEvent(step=7, path="/tmp/x\ny", reason="manual", seconds=0.25)
    line = plain(save)
    assert line.startswith("save") and "manual" in line and "\n" not in line
    assert c.format(save).plain == line
    assert not re.search(r"\x1b", plain(_step()))
