"""The babyterm app: supervises the trainer link, turns its events into screen updates, and maps the keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from babyterm.link import ProcessLink, TrainerLink
from babyterm.messages import TrainerCommand
from babyterm.race_link import ProcessRaceLink, RaceLink, RaceSettings
from babyterm.screens.help import HelpScreen
from babyterm.screens.logs import LogsScreen
from babyterm.screens.main import MainScreen
from babyterm.screens.race import RaceScreen
from babyterm.screens.xray import XRayScreen
from babyterm.text import one_line
from school.commands import Chat, Command, Pause, Resume, Save, Serve
from school.events import (
    ErrorEvent,
    Event,
    PlateauEvent,
    SaveEvent,
    ServeEvent,
    StateEvent,
    TaughtEvent,
    TrainerState,
    XRayEvent,
)
from school.options import TrainOptions
from school.rungs import DEFAULT_BRAINS
from soul.paths import BabyPaths, baby_paths

POLL_HZ = 15
"""How often the app drains the trainer's events: smooth to the eye, and one batch per widget each time."""
WARN_EVERY_S = 5.0
"""At most one warning toast this often."""
RACE_MINUTES = 2.0
"""The app's race: every rung gets a fair share of two minutes (`babyterm race` chooses its own)."""


class BabytermApp(App[None]):
    """Watch a baby learn and talk to it; training runs behind a `TrainerLink` (by default a process)."""

    CSS_PATH = "babyterm.tcss"
    TITLE = "babyterm"
    AUTO_FOCUS = None  # keys go to the app until the user asks for the chat (c or Tab)
    # The stylesheet slims the panes of a terminal narrower than 100 columns.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        # One footer key per action, showing every key that does it; the help screen reads the tooltips.
        Binding(
            "space", "toggle_pause", "pause", key_display="space/p", tooltip="pause training, or resume it"
        ),
        Binding("p", "toggle_pause", "pause", show=False, tooltip="pause training, or resume it"),
        Binding("s", "save", "save", tooltip="save a checkpoint now"),
        Binding("l", "logs", "logs", tooltip="browse the logs of every run of every baby"),
        Binding(
            "w", "serve", "serve", tooltip="let OpenAI/Ollama clients talk to it over HTTP, or stop (again)"
        ),
        Binding("question_mark", "help", "help", key_display="?", tooltip="this list of keys"),
        Binding("r", "restart", "restart", tooltip="restart the trainer (after an error)"),
        Binding(
            "R",
            "race",
            "race",
            show=False,  # the footer is full; the help screen and the palette list it
            tooltip="race the ladder: fresh babies of every brain learn this library (pauses training)",
        ),
        Binding("q", "quit", "quit", key_display="q/^c", tooltip="save, stop the trainer and quit"),
        # Priority, so it quits even from the chat Input, where Ctrl+C would copy.
        Binding(
            "ctrl+c", "quit", "quit", show=False, priority=True, tooltip="save, stop the trainer and quit"
        ),
    ]

    trainer_state: reactive[str] = reactive("starting")
    """What the trainer said it is doing (a TrainerState value), or error, or the app's own display of a
    request on its way ("pausing…", "resuming…", "saving…", "restarting…"), which is no trainer state."""

    def __init__(
        self,
        options: TrainOptions,
        link: TrainerLink | None = None,
        paths: BabyPaths | None = None,
        *,
        link_factory: Callable[[], TrainerLink] | None = None,
        chat_max_tokens: int = 120,
        race_link_factory: Callable[[RaceSettings], RaceLink] = ProcessRaceLink,
    ) -> None:
        super().__init__()
        self.options = options
        self.paths = paths or baby_paths(options.baby, options.home)
        self.link_factory: Callable[[], TrainerLink] = link_factory or partial(ProcessLink, options)
        # Made here, before App.run, so a ProcessLink sets up multiprocessing while stderr is still real.
        self.link = link if link is not None else self.link_factory()
        self.chat_max_tokens = chat_max_tokens
        self.race_link_factory = race_link_factory
        self.quitting = 0  # quit presses so far: the first saves and stops, the third leaves at once
        self._warned_at = -WARN_EVERY_S
        self.restarting = False
        self.last_step = 0
        self.serving = ""  # the HTTP server's address, while there is one
        self.theme = "tokyo-night"

    def get_default_screen(self) -> Screen[Any]:
        self.main_screen = MainScreen(self.paths, self.chat_max_tokens, recall=not self.link.watch)
        return self.main_screen

    def on_ready(self) -> None:
        """Start the trainer once the first frame is up, so every widget exists before events do."""
        try:
            self.link.start()
        except Exception as e:  # a trainer that cannot start is shown, not raised
            self.report([ErrorEvent(0, f"could not start the trainer: {e}", fatal=True)])
        self.set_interval(1 / POLL_HZ, self.drain_events)

    # -- events in ------------------------------------------------------------------------------

    def drain_events(self) -> None:
        """Take what the trainer has sent since the last drain and hand it to the screen in one go."""
        try:
            events = self.link.poll()
        except Exception as e:  # a broken queue must not close the app
            events = [ErrorEvent(self.last_step, f"lost the trainer: {e}", fatal=True)]
        quiet = self.trainer_state in (TrainerState.STOPPED, "error") or self.quitting or self.restarting
        if not events and not quiet and not self.link.is_alive():
            events = [ErrorEvent(self.last_step, "the trainer stopped without a word", fatal=True)]
        self.report(events)

    def report(self, events: list[Event]) -> None:
        if not events:
            return
        for event in events:
            self.note(event)
        self.main_screen.dispatch(events)
        for screen in self.screen_stack:
            if isinstance(screen, XRayScreen):
                screen.take([e for e in events if isinstance(e, XRayEvent | TaughtEvent)])

    def note(self, event: Event) -> None:
        """What the app itself makes of an event: the state, and notifications for what needs eyes."""
        self.last_step = max(self.last_step, event.step)
        if isinstance(event, StateEvent):
            keep = (self.trainer_state == "error" and event.state == TrainerState.STOPPED) or (
                self.quitting and event.state in (TrainerState.TRAINING, TrainerState.PAUSED)
            )
            if not keep:
                self.trainer_state = event.state
        elif isinstance(event, ErrorEvent) and event.fatal:
            self.trainer_state = "error"
            message = f"{one_line(event.message, 300)}\nPress r to restart it."
            self.notify(message, title="trainer error", severity="error", timeout=15, markup=False)
        elif isinstance(event, ErrorEvent) and time.monotonic() - self._warned_at > WARN_EVERY_S:
            # A warning can repeat every step (a non-finite loss); the loss stream has each one.
            self._warned_at = time.monotonic()
            self.notify(
                one_line(event.message, 300), title="trainer warning", severity="warning", markup=False
            )
        elif isinstance(event, ServeEvent):
            self.serving = event.url
            if event.error:
                self.notify(one_line(event.error, 300), title="cannot serve", severity="error", markup=False)
            elif event.url:
                url = event.url
                self.notify(f"OpenAI: {url}/v1  ·  Ollama: {url}", title="serving over HTTP", markup=False)
            else:
                self.notify("outside clients can no longer talk to it", title="stopped serving")
        elif isinstance(event, SaveEvent) and event.reason == "manual":
            self.notify(f"saved at step {event.step:,}", title="saved")
        elif isinstance(event, PlateauEvent):
            self.notify(event.message, title="it has learned what it can", timeout=20, markup=False)

    # -- commands out ---------------------------------------------------------------------------

    def send(self, command: Command) -> bool:
        """Send a command if a trainer is there to take it; say so in the app when not."""
        if self.quitting or self.restarting or not self.link.is_alive():
            self.notify("The trainer is not running (press r to restart it).", severity="warning")
            return False
        self.link.send(command)
        return True

    def on_trainer_command(self, message: TrainerCommand) -> None:
        command = message.command
        if not self.send(command) and isinstance(command, Chat):
            self.main_screen.chat.abandon(command.id, "the trainer is not running")

    def action_toggle_pause(self) -> None:
        if self.trainer_state in (TrainerState.PAUSED, "pausing…"):
            if self.send(Resume()):
                self.trainer_state = "resuming…"
        elif self.trainer_state in (
            TrainerState.TRAINING,
            TrainerState.STARTING,
            "resuming…",
            TrainerState.SAVING,
        ):
            if self.send(Pause()):
                self.trainer_state = "pausing…"
        else:
            self.notify(f"The trainer is {self.trainer_state}.", severity="warning")

    def action_serve(self) -> None:
        """Start the HTTP server in the trainer's process (loopback; the key from $BABYTERM_API_KEY)."""
        self.send(Serve(stop=bool(self.serving)))

    def action_save(self) -> None:
        if self.send(Save()):
            self.notify("saving…", title="save")

    async def to_main_screen(self) -> None:
        while self.screen is not self.main_screen and len(self.screen_stack) > 1:
            await self.pop_screen()

    async def action_focus_chat(self) -> None:
        """From any screen: back to the main one, into the chat input."""
        await self.to_main_screen()
        self.main_screen.action_focus_chat()

    async def action_confidence(self) -> None:
        await self.to_main_screen()
        self.main_screen.action_confidence()

    async def action_inspect(self) -> None:
        await self.to_main_screen()
        self.main_screen.action_inspect()

    async def action_xray(self) -> None:
        await self.to_main_screen()
        self.main_screen.action_xray()

    def action_logs(self) -> None:
        if not isinstance(self.screen, LogsScreen):
            self.push_screen(LogsScreen(self.paths.home))

    def action_race(self) -> None:
        """Race the ladder on this baby's library; the baby's own training pauses meanwhile."""
        if isinstance(self.screen, RaceScreen):
            return
        paused = False
        if self.trainer_state in (TrainerState.TRAINING, TrainerState.STARTING, "resuming…"):
            paused = self.send(Pause())
            if paused:
                self.trainer_state = "pausing…"
        o = self.options
        settings = RaceSettings(
            o.library, RACE_MINUTES, DEFAULT_BRAINS, o.home, device=o.device, threads=o.threads
        )

        def back(_: None = None) -> None:
            if paused and self.trainer_state in (TrainerState.PAUSED, "pausing…") and self.send(Resume()):
                self.trainer_state = "resuming…"

        self.push_screen(RaceScreen(self.race_link_factory(settings)), back)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Ask the trainer to save and stop (in a thread: it can take seconds), then exit."""
        self.quitting += 1
        if self.quitting == 2:
            self.notify("Still saving… quit once more to stop the trainer now (this save may be lost).")
        if self.quitting == 3:
            # A short stop() kills a trainer that does not answer; the first stop() then returns too.
            self.run_worker(
                partial(self.link.stop, 1.0), name="kill-trainer", thread=True, exit_on_error=False
            )
            self.exit()
        if self.quitting > 1:
            return
        self.trainer_state = "saving…"
        self.run_worker(self.link.stop, name="stop-trainer", thread=True, exit_on_error=False)

    def action_restart(self) -> None:
        if self.quitting or self.restarting:
            return
        self.restarting = True
        self.trainer_state = "restarting…"
        self.run_worker(self._restart, name="restart-trainer", thread=True, exit_on_error=False)

    def _restart(self) -> TrainerLink | None:
        self.link.stop()
        if self.quitting:
            return None
        link = self.link_factory()
        link.start()
        return link

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if not worker.is_finished:
            return
        if worker.name == "stop-trainer":
            self.drain_events()  # the trainer's last words (its final save)
            self.exit()
        elif worker.name == "restart-trainer":
            self.restarting = False
            if worker.state == WorkerState.SUCCESS and worker.result is not None:
                self.link = worker.result
                self.report([StateEvent(self.last_step, TrainerState.STARTING.value, "restarted")])
            elif worker.state == WorkerState.ERROR:
                self.report(
                    [ErrorEvent(self.last_step, f"could not restart the trainer: {worker.error}", True)]
                )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Pause / resume training", "Pause the trainer, or resume it", self.action_toggle_pause
        )
        yield SystemCommand("Save now", "Save a checkpoint of the baby now", self.action_save)
        yield SystemCommand("Chat", "Talk to the baby (focus the chat input)", self.action_focus_chat)
        yield SystemCommand(
            "Confidence colours", "Colour replies by the baby's confidence (k)", self.action_confidence
        )
        yield SystemCommand(
            "Inspect a reply", "Each token's alternatives and what it looked at (i)", self.action_inspect
        )
        yield SystemCommand(
            "X-ray", "See inside: the typed text or the last reply through the brain (x)", self.action_xray
        )
        yield SystemCommand("Logs", "Browse the logs of every run of every baby", self.action_logs)
        yield SystemCommand(
            "Race the ladder",
            "Fresh babies of every brain learn this library side by side (R; pauses training)",
            self.action_race,
        )
        yield SystemCommand(
            "Serve over HTTP",
            "Let OpenAI- and Ollama-compatible clients talk to it (w; again to stop)",
            self.action_serve,
        )
        yield SystemCommand("Help", "Every key, and the chat commands", self.action_help)
        yield SystemCommand(
            "Restart trainer", "Stop the trainer (saving) and start a new one", self.action_restart
        )
