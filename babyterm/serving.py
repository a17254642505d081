"""`babyterm serve` and `babyterm train --serve`: the HTTP server beside an observer or a tutor."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from school.events import ChatEvent, ErrorEvent, Event, StateEvent, TrainerState
from school.options import TrainOptions
from soul.milestones import list_milestones
from soul.paths import BabyPaths, SoulError, baby_paths


def served_weights(step: str, paths: BabyPaths) -> str | int:
    """`--step`: "live", or the step of a milestone that exists."""
    if step == "live":
        return "live"
    if step == "best":
        raise SoulError(
            "--step best needs a recorded best self, which this baby does not have: use live or N"
        )
    if not step.isdigit():
        raise SoulError(f"--step takes live, best or a milestone step, not {step!r}")
    have = list_milestones(paths.milestones)
    if int(step) not in have:
        known = ", ".join(map(str, have[-8:])) or "none yet"
        raise SoulError(f"{paths.name} has no milestone at step {step} (milestones: {known})")
    return int(step)


def http_reply_line(event: Event) -> str | None:
    """One line per finished reply to an outside client, for the terminal."""
    if isinstance(event, ChatEvent) and event.final and event.source == "http" and event.role == "baby":
        return f"http reply {event.reply_id}: {len(event.tokens)} tokens from {event.weights}"
    return None


def cmd_serve(args: argparse.Namespace, options: TrainOptions) -> int:
    """Answer from the newest checkpoint (or a milestone), following new checkpoints as they land."""
    from babyterm.server.serve import ServerThread, api_key, banner, check_host
    from babyterm.stopping import stop_on_signals
    from school.commands import Stop
    from school.observer import Observer

    check_host(args.host, api_key(args.api_key))  # before anything else: the safety refusal comes first
    paths = baby_paths(options.baby, options.home)
    if not paths.exists():
        raise SoulError(f"no baby named {paths.name!r} in {paths.home} to serve")
    weights = served_weights(args.step, paths)
    key = api_key(args.api_key)
    observer = Observer(options)

    def show(event: Event) -> None:
        if isinstance(event, StateEvent) and event.state == TrainerState.WATCHING.value:
            print(f"answering as {paths.name} from step {event.step}", flush=True)
        elif isinstance(event, ErrorEvent):
            print(f"babyterm: {event.message}", file=sys.stderr, flush=True)
        elif (line := http_reply_line(event)) is not None:
            print(line, flush=True)

    observer.subscribe(show)
    server = ServerThread(observer, paths.name, args.host, args.port, key, weights)
    server.start()
    print(banner(server.url, paths.name, key is not None), flush=True)
    try:
        with stop_on_signals(lambda: observer.send(Stop())):
            observer.run()
    finally:
        server.stop()
    return 0


def serve_live(tutor: Any, args: argparse.Namespace) -> Any:
    """Start a server on the tutor's live weights (replies between steps, at most LIVE_DUTY of the time)."""
    from babyterm.server.serve import LIVE_DUTY, ServerThread, api_key, banner

    key = api_key(args.api_key)
    name = baby_paths(tutor.options.baby, tutor.options.home).name
    server = ServerThread(tutor, name, args.host, args.port, key, duty=LIVE_DUTY)

    def show(event: Event) -> None:
        if (line := http_reply_line(event)) is not None:
            print(line, flush=True)

    tutor.subscribe(show)
    server.start()
    print(banner(server.url, name, key is not None), flush=True)
    return server
