"""`--probe-speed` for the benchmarks that run `babyterm train`: the new baby is sized for that
speed instead of a measured one (school.recipe.SPEED_ENV), so runs compared in pairs get the same
brain whatever the machine's hour."""

from __future__ import annotations

import argparse
import os

from school.recipe import SPEED_ENV


def add_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--probe-speed", type=float, default=None, metavar="TOKENS_S",
        help=f"size the baby for this probe speed, not a measured one ({SPEED_ENV}): "
        "runs compared in pairs then get the same brain",
    )  # fmt: skip


def apply(args: argparse.Namespace) -> None:
    """Pin the speed for the `babyterm train` children, which inherit the environment."""
    if args.probe_speed is not None:
        os.environ[SPEED_ENV] = str(args.probe_speed)
