"""The `babyterm` command's entry point: babyterm.cli imported under guard, so that a Ctrl+C in the
first moments (while Python is still importing) ends as every other Ctrl+C does, in one line."""

from __future__ import annotations

import sys

INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl+C."""


def run() -> int:
    try:
        from babyterm.cli import main
    except KeyboardInterrupt:
        print("babyterm: interrupted", file=sys.stderr)
        return INTERRUPTED
    return main()
