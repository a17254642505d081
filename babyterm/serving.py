"""`babyterm serve` and `babyterm train --serve`: the HTTP server beside an observer or a tutor."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from school.events import ChatEvent, ErrorEvent, Event, StateEvent, TrainerState
from school.options import TrainOptions
from school.weights import BEST, LIVE, Weights
from soul.best_self import read_best
from soul.milestones import list_milestones
from soul.paths import BabyPaths, SoulError, baby_paths

LIVE_DUTY = 0.10
"""Share of the wall clock replies to HTTP clients may take while the baby trains."""


def served_weights(step: Weights, paths: BabyPaths) -> Weights:
    """`--step` (school.weights): "live", the best self if it has one, or a milestone that exists."""
    if step == LIVE:
        return LIVE
    if step == BEST:
        if read_best(paths.milestones) is None:
            raise SoulError(f"{paths.name} has no best self yet: it is kept at its first held-out score")
        return BEST
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
        raise paths.missing("to serve")
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
        with stop_on_signals(lambda: observer.send(Stop()), saves=False):
            observer.run()
    finally:
        server.stop()
    return 0


def serve_live(tutor: Any, args: argparse.Namespace) -> Any:
    """Start a server on the tutor's live weights (replies between steps, at most LIVE_DUTY of the time)."""
    from babyterm.server.serve import ServerThread, api_key, banner

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


class ServeRelay:
    """In the app's trainer process: passes commands from the app's queue on to the host's, and takes
    Serve commands itself, starting or stopping a server beside the host (the tutor or the observer).

    `say` hands events to the app (ServeEvent, and a line when the server cannot start).
    """

    PORTS_TRIED = 10  # 8000 busy: 8001, ... (the app has no --port)

    def __init__(self, source: Any, host: Any, name: str, say: Any, duty: float) -> None:
        import threading

        self.source, self.host, self.name, self.say, self.duty = source, host, name, say, duty
        self.server: Any = None
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="babyterm-relay", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._done.set()
        self.thread.join(5)
        self._stop_server()

    def _run(self) -> None:
        import queue as stdlib_queue

        from school.commands import CommandError, Serve, command_from_dict

        while not self._done.is_set():
            try:
                raw = self.source.get(timeout=0.2)
            except stdlib_queue.Empty:
                continue
            except (EOFError, OSError):  # the app has gone: the host notices on its own
                return
            if isinstance(raw, dict) and raw.get("kind") == Serve.kind:
                try:
                    self._serve(command_from_dict(raw))  # type: ignore[arg-type]
                except CommandError as e:
                    self._tell("", f"command refused: {e}")
                continue
            self.host.commands.put(raw)

    def _serve(self, command: Any) -> None:
        from babyterm.server.serve import ServeError, ServerThread, api_key

        if command.stop:
            self._stop_server()
            self._tell("")
            return
        if self.server is not None:
            self._tell(self.server.url)
            return
        error = ""
        for port in range(command.port, command.port + self.PORTS_TRIED):
            try:
                server = ServerThread(self.host, self.name, command.host, port, api_key(None), duty=self.duty)
                server.start()
            except ServeError as e:
                error = str(e)
                if "in use" not in error:
                    break
                continue
            self.server = server
            self._tell(server.url)
            return
        self._tell("", error)

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _tell(self, url: str, error: str = "") -> None:
        from school.events import ServeEvent

        self.say(ServeEvent(getattr(self.host, "step", 0), url, error))
