"""`python -m babyterm` is the `babyterm` command."""

from babyterm.cli import main

raise SystemExit(main())
