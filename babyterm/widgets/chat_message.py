"""One chat message: a reply grows piece by piece, then can show its tokens by confidence and selection."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from textual.color import Color
from textual.content import Content
from textual.style import Style
from textual.widgets import Static

from babyterm.text import clean

MARK = re.compile(r"\*[^*\n]+\*")
"""Words marked for emphasis, as school.emphasis reads them."""
# Confidence colours are data (like the pixel), so they are fixed, not theme variables.
LOW, MID, HIGH = Color(205, 70, 60), Color(215, 175, 70), Color(95, 225, 120)
SELECTED = Style(reverse=True, bold=True)


@lru_cache(maxsize=128)
def _confidence_style(percent: int) -> Style:
    p = percent / 100
    if p < 0.1:
        return Style(foreground=LOW, dim=True)
    if p > 0.8:
        return Style(foreground=HIGH, bold=True)
    t = (p - 0.1) / 0.7  # 10% -> red, 45% -> amber, 80% -> green
    colour = LOW.blend(MID, t * 2) if t < 0.5 else MID.blend(HIGH, t * 2 - 1)
    return Style(foreground=colour)


def confidence_style(prob: float) -> Style:
    """Dim red below 10%, through amber, to bright green above 80%."""
    return _confidence_style(round(min(max(prob, 0.0), 1.0) * 100))


def visible(piece: str) -> str:
    """A selected token must show even when it is a space or a line break."""
    if not piece:
        return "∅"
    if piece.strip():
        return piece
    return piece.replace(" ", "␣").replace("\n", "↵\n")


def token_pieces(tokens: list[dict[str, Any]]) -> list[str]:
    """Each token's text, cleaned, with the reply's leading and trailing line breaks dropped
    (the final text is stripped of them too)."""
    pieces = [clean(str(t.get("text", ""))) for t in tokens]
    for i in range(len(pieces)):
        pieces[i] = pieces[i].lstrip("\n")
        if pieces[i]:
            break
    for i in reversed(range(len(pieces))):
        pieces[i] = pieces[i].rstrip("\n")
        if pieces[i]:
            break
    return pieces


class ChatMessage(Static):
    """One message; a baby's reply grows piece by piece until its final event (or Escape) closes it."""

    def __init__(
        self, role: str, text: str = "", *, step: int | None = None, reply_id: str = "", weights: str = ""
    ) -> None:
        super().__init__(classes=f"-{role}")
        self.role = role
        self.text = text
        self.step = step
        self.reply_id = reply_id
        self.note = ""
        self.weights = weights
        self.done = role != "baby" or bool(text)
        self.tokens: list[dict[str, Any]] = []
        """Per-token insight of a finished reply (none for history)."""
        self.confidence = False
        self.selected: int | None = None

    def on_mount(self) -> None:
        self.show()

    def header(self) -> str:
        if self.role == "note":
            return ""
        header = {"you": "you", "baby": "baby", "correction": "you · correction"}.get(self.role, self.role)
        weights = clean(self.weights)
        if weights.startswith(("milestone", "best self")):
            return f"{header} · {weights}"  # an earlier or best self answered, not the live step
        if self.role == "baby" and self.step is not None:
            header += f" · {'live ' if weights.startswith('live') else ''}step {self.step:,}"
        elif weights and not weights.startswith("live"):
            header += f" · {weights}"
        return header

    def body(self) -> list[str | tuple[str, Style | str]]:
        if self.tokens and (self.confidence or self.selected is not None):
            parts: list[str | tuple[str, Style | str]] = []
            for i, (tok, piece) in enumerate(zip(self.tokens, token_pieces(self.tokens), strict=True)):
                style = confidence_style(float(tok.get("prob", 0.0))) if self.confidence else None
                if i == self.selected:
                    piece, style = visible(piece), (style + SELECTED if style else SELECTED)
                parts.append((piece, style) if style else piece)
            return parts
        body = clean(self.text) or ("…" if not self.done else "(no words yet)")
        if self.role != "you":
            return [body]
        parts, at = [], 0
        for m in MARK.finditer(body):  # what the user marked for emphasis
            parts += [body[at : m.start()], (m.group(), "underline $accent")]
            at = m.end()
        return [*parts, body[at:]]

    def show(self) -> None:
        header = self.header()
        parts: list[str | tuple[str, Style | str]] = [(header, "$text-muted"), "\n"] if header else []
        parts += self.body()
        if not self.done:
            parts.append(("▍", "$accent"))
        if self.note:
            parts.append((f"  ({self.note})", "$text-muted italic"))
        self.update(Content.assemble(*parts))

    def add_piece(self, piece: str, step: int) -> None:
        if self.done:
            return  # pieces that arrive after Escape stopped the reply
        self.text += piece
        self.step = step
        self.show()

    def finish(
        self, text: str | None = None, note: str = "", tokens: list[dict[str, Any]] | None = None
    ) -> None:
        if text:
            self.text = text
        if tokens:
            self.tokens = tokens
        self.note = note or self.note
        self.done = True
        self.remove_class("-streaming")
        self.show()
