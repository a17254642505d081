"""The racers side by side: each one's rung of the ladder, its latest score and, at the end, its answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from babyterm.text import clean
from school.rungs import RUNG_NOTES


class RacerCard(Static):
    """One racer: what its rung adds, how it scores, what it answered."""

    def __init__(self, brain: str) -> None:
        super().__init__(id=f"racer-{brain}", classes="racer")
        self.brain = brain
        self.score = ""
        self.answer: str | None = None
        self.border_title = brain

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        note = RUNG_NOTES.get(self.brain, "")
        answer = "answers when the race is over…" if self.answer is None else f"answers: “{self.answer}”"
        # Content, never markup: model text has `[` and escapes (cleaned first)
        self.update(Content(f"{note}\n\n{answer}"))
        self.border_subtitle = self.score


class RaceAnswers(Horizontal):
    """A card per racer, in the order they race."""

    def __init__(self, brains: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.brains = brains

    def compose(self) -> ComposeResult:
        for brain in self.brains:
            yield RacerCard(brain)

    def card(self, brain: str) -> RacerCard:
        return self.query_one(f"#racer-{brain}", RacerCard)

    def score(self, brain: str, seconds: float, val_bpb: float) -> None:
        card = self.card(brain)
        card.score = f"{val_bpb:.3f} bits/byte · {seconds:.1f} s"  # short: four cards share a row
        card.show()

    def answered(self, brain: str, answer: str) -> None:
        card = self.card(brain)
        card.answer = clean(answer).replace("\n", " ⏎ ")
        card.show()
