"""Making model and log text safe to show: no escape sequences, no control characters, short numbers."""

from __future__ import annotations

import re
from functools import lru_cache

from rich.style import Style as RichStyle
from textual.style import Style

# CSI and OSC escape sequences first (so their parameters go too), then any lone C0/C1 control.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Model text as plain, printable text: escapes and controls removed, tabs as spaces, newlines kept."""
    text = _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\t", "    "))
    return _CONTROLS.sub("", text)


def one_line(text: str, limit: int | None = None) -> str:
    """`clean` text on one line (runs of whitespace folded), cut to `limit` characters with an ellipsis."""
    line = " ".join(clean(text).split())
    if limit is not None and len(line) > limit:
        return line[: max(0, limit - 1)] + "…"
    return line


def count(n: float) -> str:
    """Three significant digits: 1234 -> 1.23k, 122_880 -> 123k, 2_100_000 -> 2.10M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.{2 if abs(v) < 10 else 1 if abs(v) < 100 else 0}f}{suffix}"
    return f"{n:.0f}"


def duration(seconds: float) -> str:
    """Training time the way a person reads it: 8s, 12m 04s, 3h 07m."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


@lru_cache(maxsize=64)
def style(rich_style: str) -> Style:
    """A Rich style string (the palette's bands: "bold deep_pink2") as a style Content can draw.

    Content parses styles itself and knows only CSS colour names, not Rich's 256 named colours.
    """
    return Style.from_rich_style(RichStyle.parse(rich_style))
