"""The x-ray's row of stages, in the order the numbers flow through the brain; the current one lit."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class XRayStages(Static):
    def show_stages(self, names: list[str], current: int) -> None:
        parts: list[str | tuple[str, str]] = []
        for n, name in enumerate(names):
            if n:
                parts.append((" → ", "$text-muted"))
            parts.append((f" {name} ", "bold reverse $accent" if n == current else ""))
        self.update(Content.assemble(*parts))
