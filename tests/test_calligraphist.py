"""Tests for the calligraphist: percentile bands and records (the lines it colours: tests/test_lines.py)."""

from __future__ import annotations

import math
import random

from school.calligraphist import ALL_BANDS, BANDS, NEUTRAL, NEW_BEST, NEW_WORST, Calligraphist

NAMES = ["perfect", "almost perfect", "super great", "great", "good", "fine", "almost fine", "average"]
NAMES += ["meh", "bad", "worse", "wtf", "omg", "omgwtf"]


def _filled(stat: str, values: range | list[float], **kwargs: object) -> Calligraphist:
    c = Calligraphist(**kwargs)  # type: ignore[arg-type]
    for v in values:
        c.observe(stat, float(v))
    return c


def test_bands_are_ordered_named_and_marked() -> None:
    assert [b.name for b in BANDS] == NAMES
    assert [b.rank for b in ALL_BANDS] == list(range(16))
    assert len({b.name for b in ALL_BANDS}) == 16
    assert (NEW_BEST.symbol, NEW_WORST.symbol) == ("★", "✗")
    assert not any(b.symbol for b in BANDS)


def test_every_band_is_reachable_lower_is_better() -> None:
    # 140 values 0..139: value 10i+5 sits in the i-th fourteenth of the history.
    c = _filled("val_loss", range(140))
    for i, band in enumerate(BANDS):
        assert c.band("val_loss", 10 * i + 5) == band
    assert c.band("val_loss", -1) == NEW_BEST
    assert c.band("val_loss", 140) == NEW_WORST


def test_every_band_is_reachable_higher_is_better() -> None:
    c = _filled("accuracy", range(140))
    for i in range(len(BANDS)):
        assert c.band("accuracy", 10 * i + 5) == BANDS[-1 - i]
    assert c.band("accuracy", 140) == BANDS[0]  # a training stat: the best band, never a record
    assert c.band("accuracy", -1) == NEW_WORST


def test_a_noisy_stream_visits_every_band() -> None:
    rng = random.Random(0)
    c = Calligraphist(window=200)
    seen = {c.observe("val_loss", rng.gauss(4.0, 1.0)).name for _ in range(3000)}
    assert seen == {b.name for b in ALL_BANDS}


def test_short_history_is_neutral_and_records_need_history() -> None:
    c = Calligraphist()
    assert [c.observe("val_loss", v) for v in (5.0, 1.0, 9.0, 0.5, 10.0)] == [NEUTRAL] * 5
    assert c.observe("val_loss", 0.1) == NEW_BEST
    assert c.observe("val_loss", 0.1) in BANDS[:2]  # ties the record: near the top, not another record
    assert c.observe("val_loss", 99.0) == NEW_WORST


def test_flat_history_puts_its_value_in_the_middle() -> None:
    c = _filled("val_loss", [2.0] * 50)
    assert c.band("val_loss", 2.0) == NEUTRAL


def test_records_are_all_time_but_bands_follow_the_window() -> None:
    c = _filled("val_loss", [0.0, *range(100, 110)], window=10)  # 0.0 has left the window
    assert c.best("val_loss") == 0.0
    assert c.band("val_loss", 50) == BANDS[0]  # better than all it remembers, but not a record
    assert c.band("val_loss", -1) == NEW_BEST
    assert c.band("val_loss", 104.5) in (BANDS[6], BANDS[7])


def test_band_does_not_record_and_observe_grades_before_recording() -> None:
    c = _filled("val_loss", range(10))
    for _ in range(5):
        assert c.band("val_loss", -5) == NEW_BEST
    assert c.observe("val_loss", -5) == NEW_BEST
    assert c.band("val_loss", -5) == BANDS[0]


def test_direction_defaults_and_overrides() -> None:
    assert _filled("mystery", range(20)).band("mystery", -1) == BANDS[0]  # unknown stats: lower is better
    assert (
        _filled("val_loss", range(20), lower_is_better={"val_loss": False}).band("val_loss", -1) == NEW_WORST
    )
    assert _filled("match", range(20)).band("match", 30) == BANDS[0]


def test_non_finite_values_are_worst_and_not_recorded() -> None:
    c = _filled("val_loss", range(20))
    assert c.observe("val_loss", math.nan) == BANDS[-1]
    assert c.observe("val_loss", math.inf) == BANDS[-1]
    assert c.best("val_loss") == 0.0
    assert c.band("val_loss", 9.5) in (BANDS[6], BANDS[7])


def test_only_held_out_figures_set_records() -> None:
    c = _filled("loss", range(20))
    assert c.band("loss", -1) == BANDS[0]  # a training loss at its lowest: the top band, no star
    assert _filled("val_bpb", range(20)).band("val_bpb", -1) == NEW_BEST


def test_memorising_grades_training_stats_plainly_until_a_held_out_best() -> None:
    c = _filled("loss", range(20))
    for v in range(20):
        c.observe("val_bpb", 10 + v)
    c.memorising = True  # the tutor's plateau
    assert c.band("loss", -1) == NEUTRAL and c.band("accuracy", 1.0) == NEUTRAL
    assert c.observe("val_bpb", 15) != NEW_BEST and c.memorising
    assert c.observe("val_bpb", 1.0) == NEW_BEST and not c.memorising  # learning again
    assert c.band("loss", -1) == BANDS[0]
