"""The `babyterm` command's entry point: babyterm.cli imported under guard, so that a Ctrl+C in the
first moments (while Python is still importing) ends as every other Ctrl+C does, in one line."""

from __future__ import annotations

import os
import sys

INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl+C."""
BROKEN_PIPE = 141
"""128 + SIGPIPE, as a shell reports a command whose reader closed the pipe."""


def run() -> int:
    try:
        from babyterm.cli import main
    except KeyboardInterrupt:
        print("babyterm: interrupted", file=sys.stderr)
        return INTERRUPTED
    try:
        return main()
    except BrokenPipeError:  # `babyterm xray ... | head`: the reader left, which is not an error to show
        # Python would flush stdout again at exit and print a second traceback: point it at nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
