"""Tests for the scribe: every mood reachable, cadence, determinism, clean lines."""

from __future__ import annotations

import random
import unicodedata

from school.calligraphist import ALL_BANDS, BANDS, NEW_BEST, NEW_WORST, Calligraphist
from school.scribe import LINES, Scribe, clean, group_of, words_right


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _scribe(seed: int = 0, quiet_p: float = 0.0, window: int = 1000) -> tuple[Scribe, FakeClock]:
    clock = FakeClock()
    return Scribe(Calligraphist(window=window), random.Random(seed), clock=clock, quiet_p=quiet_p), clock


def _no_control(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in text)


def test_every_mood_is_reachable() -> None:
    scribe, clock = _scribe()
    callig = scribe.calligraphist
    for i in range(140):
        callig.observe("match", 0.2 + i * 0.004)
    grid = [0.2 + i * 0.0005 for i in range(1120)]
    moods = set()
    for band in BANDS:
        value = next(v for v in grid if callig.band("match", v) == band)
        clock.now += 100
        event = scribe.comment(1, "the cat", "the dog ran", value)
        assert event is not None and event.mood == band.name
        pct = round(value * 100)
        expected = {t.format(pct=pct, step=1, right=1, words=3) for t in LINES[group_of(band)]}
        assert event.line in expected
        moods.add(event.mood)
    clock.now += 100
    event = scribe.comment(2, "a", "b", 0.01)
    assert event is not None and event.mood == NEW_WORST.name
    moods.add(event.mood)
    clock.now += 100
    best = scribe.comment(3, "a", "b", 0.99)  # a best-ever guess of training text sets no record
    assert best is not None and best.mood == BANDS[0].name
    assert moods == {b.name for b in ALL_BANDS} - {NEW_BEST.name}


def test_every_band_has_a_table_of_lines() -> None:
    assert {group_of(b) for b in ALL_BANDS} == set(LINES)
    assert group_of(BANDS[0]) == group_of(BANDS[3]) != group_of(BANDS[4])
    for lines in LINES.values():
        assert 4 <= len(lines) <= 6
        for template in lines:
            line = template.format(pct=50, step=3, right=2, words=5)
            assert "{" not in line and _no_control(line)


def test_cadence_waits_between_ordinary_comments() -> None:
    scribe, clock = _scribe()
    for _ in range(10):  # warm the history; these comments are allowed by time and may happen
        scribe.comment(0, "x", "y", 0.5)
    clock.now = 1000.0
    assert scribe.comment(1, "x", "y", 0.5) is not None
    for t in (1001.0, 1010.0, 1019.9):
        clock.now = t
        assert scribe.comment(2, "x", "y", 0.5) is None
    clock.now = 1020.0
    assert scribe.comment(3, "x", "y", 0.5) is not None


def test_records_speak_sooner_but_not_instantly() -> None:
    scribe, clock = _scribe(quiet_p=1.0)  # ordinary moods never speak
    for i in range(10):
        clock.now += 100
        assert scribe.comment(0, "x", "y", 0.4 + (i % 2) / 10) is None
    event = scribe.comment(1, "x", "y", 0.1)
    assert event is not None and event.mood == "new worst"
    clock.now += 1
    assert scribe.comment(2, "x", "y", 0.05) is None  # a record, but inside the record interval
    clock.now += 5
    event = scribe.comment(3, "x", "y", 0.03)
    assert event is not None and event.mood == "new worst"


def test_same_seed_same_comments() -> None:
    def run(seed: int) -> list[tuple[int, str, str] | None]:
        scribe, clock = _scribe(seed=seed, quiet_p=0.5)
        rng = random.Random(42)
        out = []
        for step in range(200):
            clock.now += 30
            e = scribe.comment(step, "abc", "abd", rng.random())
            out.append(None if e is None else (e.step, e.mood, e.line))
        return out

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert any(x is None for x in first) and any(x is not None for x in first)


def test_lines_are_clean_prose() -> None:
    scribe, clock = _scribe()
    nasty = "\x1b[31mred\x1b[0m\x00 and\nnew\tline \u202eevil" + "z" * 200
    for i in range(30):
        clock.now += 100
        event = scribe.comment(i, nasty, nasty[::-1], i / 30)
        assert event is not None
        for text in (event.line, event.guess, event.truth):
            assert _no_control(text) and "\u202e" not in text and "[31m" not in text
        assert len(event.guess) <= 60 and event.guess.startswith("red and new line evil")


def test_clean() -> None:
    assert clean("  a\r\n\tb\x07c  ") == "a bc"
    assert clean("x" * 100) == "x" * 59 + "…"
    assert clean("\x1b]0;title\x07ok") == "ok"
    assert clean("") == ""


def test_lines_are_its_own_words_not_quotes_of_the_guess() -> None:
    scribe, clock = _scribe()
    guess, truth = "zebras quietly juggling marmalade", "zebras loudly eating porridge"
    said = []
    for i in range(60):
        clock.now += 100
        if (event := scribe.comment(i, guess, truth, (i % 20) / 20)) is not None:
            said.append(event.line)
    assert len(said) > 20
    for line in said:
        assert not any(word in line for word in ("zebras", "juggling", "marmalade", "porridge"))
    assert words_right(guess, truth) == 1 and words_right("a b", "a b c") == 2
