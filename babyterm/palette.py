"""How each of the calligraphist's bands is drawn: band name -> Rich style, cool (best) to hot (worst)."""

from __future__ import annotations

from school.calligraphist import Band

BAND_STYLES: dict[str, str] = {
    "new best": "bold #ffd700",
    "perfect": "bold bright_cyan",
    "almost perfect": "bright_cyan",
    "super great": "bold bright_green",
    "great": "bright_green",
    "good": "green",
    "fine": "pale_green1",
    "almost fine": "bright_white",
    "average": "white",
    "meh": "light_goldenrod1",
    "bad": "yellow",
    "worse": "orange1",
    "wtf": "orange_red1",
    "omg": "deep_pink2",
    "omgwtf": "bold magenta",
    "new worst": "bold red",
}
"""A Rich style per band name; Rich styles, so the printer and the widgets draw the same colours."""

QUIET = "dim"
"""Labels and lines that are not graded (step numbers, saves, progress)."""


def band_style(band: Band) -> str:
    """The Rich style `band` is drawn in (an unknown band is drawn as an average one)."""
    return BAND_STYLES.get(band.name, BAND_STYLES["average"])
