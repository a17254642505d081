"""One stage of the x-ray: its beginner's sentence, then its numbers for the focused token, layer, head."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class XRayStage(Static):
    def show_stage(self, title: str, sentence: str, lines: list[str]) -> None:
        self.border_title = title
        body = "\n".join(lines)
        self.update(Content.assemble((sentence, "italic $text-muted"), "\n\n", body))

    def waiting(self, note: str) -> None:
        self.border_title = "x-ray"
        self.update(Content(note))
