"""The scribe: comments on the baby's guesses, roasting the bad ones and cheering the good ones.

Its lines are its own words about a guess (how much matched, how far it got), never quotes of it.

Its mood is the calligraphist's band of the guess's `match`, so the baby is judged against its own
recent self, not against a grown-up model. Lines are plain prose: the tutor feeds them back as text.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata
from collections.abc import Callable

from school.calligraphist import BANDS, NEW_BEST, NEW_WORST, Band, Calligraphist
from school.events import ScribeEvent

# Placeholders: {pct} (match in percent), {step}, {right} (words right before the first miss) and
# {words} (words in the true continuation). The scribe speaks of the guess, never quotes it: its
# lines are training text too, and quoted guesses would teach the baby its own mistakes.
LINES: dict[str, tuple[str, ...]] = {
    "great": (
        "Step {step}, and {pct}% of that guess was right. Honestly? Lovely work.",
        "It is reading, it is learning, it is showing off a little: {right} words right in a row.",
        "Better than it has managed lately. I am proud of this one.",
        "Look at that, {pct}% on the nose. It usually tries hard, and today it shows.",
        "A fine guess. The book and the baby walked side by side for {right} of {words} words.",
    ),
    "fine": (
        "Close-ish. About {pct}% of it matched the book.",
        "Not bad, not a masterpiece. A respectable Tuesday of a guess.",
        "{pct}% right. About as good as it has been lately, which is fine.",
        "The book nods politely at that one.",
        "A middling guess: some of the right words, some of its own.",
    ),
    "bad": (
        "We will pretend we did not see that one.",
        "Only {pct}% right. It was thinking about snacks again.",
        "That guess was a choice. The book chose differently.",
        "A wobbly one. Worse than usual, but wobbling is how walking starts.",
        "The book wins this round, {words} words to {right}.",
    ),
    "awful": (
        "What. The book has never felt so far away.",
        "One of its worst guesses lately. Deep breaths, little one.",
        "{pct}% right. I have seen keyboards fall down stairs with better spelling.",
        "Somewhere, a dictionary weeps quietly.",
        "Oof. The baby went somewhere else entirely.",
    ),
    "new worst": (
        "New worst ever at step {step}. Impressive, in its way.",
        "A record low. Every great writer has one of these in a drawer.",
        "Its worst guess yet, {pct}% right. Tomorrow can only be better.",
        "A historic miss, step {step}. We will laugh about it later.",
    ),
}

# A guess is graded against training text, so it sets no records (school.calligraphist.HELD_OUT):
# a best-ever match is the top band, and reads as "great".
_GROUP_OF_BAND = {NEW_BEST.name: "great", NEW_WORST.name: "new worst"}
for _band in BANDS:
    _GROUP_OF_BAND[_band.name] = (
        "great" if _band.rank <= 4 else "fine" if _band.rank <= 8 else "bad" if _band.rank <= 11 else "awful"
    )

EXCERPT_CHARS = 60
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)")
# Bidi overrides can make a terminal line read differently from its bytes; other format chars are harmless.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of printable text: escape sequences and control characters gone, whitespace folded."""
    text = _ANSI.sub("", text)
    # Newlines and tabs are Cc too: keep them until split() folds every whitespace run into one space.
    text = "".join(
        ch for ch in text if ch.isspace() or (unicodedata.category(ch) != "Cc" and ch not in _BIDI)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def words_right(guess: str, truth: str) -> int:
    """Words of the guess equal to the truth's, from the start up to the first miss."""
    n = 0
    for a, b in zip(guess.split(), truth.split(), strict=False):
        if a != b:
            break
        n += 1
    return n


def group_of(band: Band) -> str:
    """Which table of lines a band draws from."""
    return _GROUP_OF_BAND[band.name]


class Scribe:
    """Watches guesses and, now and then, says something about them."""

    def __init__(
        self,
        calligraphist: Calligraphist,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 20.0,
        record_interval_s: float = 5.0,
        quiet_p: float = 0.3,
    ) -> None:
        """
        Args:
            min_interval_s: seconds between two ordinary comments, at least.
            record_interval_s: seconds between two comments when the guess is a new best or worst.
            quiet_p: chance of staying silent on an ordinary guess even when allowed to speak.
        """
        self.calligraphist = calligraphist
        self.rng = rng
        self.clock = clock
        self.min_interval_s = min_interval_s
        self.record_interval_s = record_interval_s
        self.quiet_p = quiet_p
        self._last_spoke = -float("inf")

    def comment(self, step: int, guess: str, truth: str, match: float) -> ScribeEvent | None:
        """Grade the guess (always: the history must see every guess) and maybe comment on it."""
        band = self.calligraphist.observe("match", match)
        now = self.clock()
        record = band in (NEW_BEST, NEW_WORST)
        if now - self._last_spoke < (self.record_interval_s if record else self.min_interval_s):
            return None
        if not record and self.rng.random() < self.quiet_p:
            return None
        self._last_spoke = now
        guess, truth = clean(guess) or "…", clean(truth) or "…"
        template = self.rng.choice(LINES[group_of(band)])
        right = words_right(guess, truth)
        line = template.format(pct=round(match * 100), step=step, right=right, words=len(truth.split()))
        return ScribeEvent(step=step, mood=band.name, line=line, guess=guess, truth=truth)
