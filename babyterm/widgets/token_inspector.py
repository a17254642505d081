"""The token inspector: one token of a reply, how sure the baby was, and the five tokens it weighed."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from babyterm.text import clean

BAR = 14
"""Width of a probability bar at 100%."""
EIGHTHS = " ▏▎▍▌▋▊▉"


def quoted(piece: str, width: int = 12) -> str:
    """A token as it reads: quoted (its leading space shows), line breaks as ↵, cut to `width`."""
    text = clean(piece).replace("\n", "↵")
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f'"{text}"'


def bar(prob: float, width: int = BAR) -> str:
    """A bar of `prob` × `width` cells, in eighths."""
    eighths = round(min(max(prob, 0.0), 1.0) * width * 8)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


class TokenInspector(Static):
    """The selected token, its probability and margin, and the top five with bars."""

    def show_token(self, token: dict[str, Any], index: int, count: int) -> None:
        prob, margin = float(token.get("prob", 0.0)), float(token.get("margin", 0.0))
        chosen = token.get("id")
        self.border_title = f"token {index + 1} of {count}"
        parts: list[str | tuple[str, str]] = [
            (quoted(str(token.get("text", "")), 24), "bold $accent"),
            (f"  p {prob:.1%} · margin {margin:.1%}", "$text-muted"),
        ]
        for alt in token.get("top", [])[:5]:
            alt_id, alt_prob, alt_text = alt[0], float(alt[1]), str(alt[2]) if len(alt) > 2 else "?"
            mine = alt_id == chosen
            parts += [
                "\n",
                ("▸ " if mine else "  ", "$accent"),
                (f"{quoted(alt_text):<15}", "bold" if mine else ""),
                f"{alt_prob:6.1%} ",
                (bar(alt_prob), "$accent" if mine else "$primary"),
            ]
        if chosen not in [alt[0] for alt in token.get("top", [])[:5]]:
            parts += ["\n", ("(sampled from outside the top five)", "$text-muted italic")]
        self.update(Content.assemble(*parts))
