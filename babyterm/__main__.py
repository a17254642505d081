"""`python -m babyterm` is the `babyterm` command."""

from babyterm.launch import run

raise SystemExit(run())
