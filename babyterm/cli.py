"""The `babyterm` command: the app by default, and train / chat / logs / info headless."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from babyterm.launch import INTERRUPTED
from brain import BRAIN_NAMES
from school.commands import Chat
from school.options import MAX_PROMPT_CHARS, PRECISIONS, TrainOptions
from school.rungs import DEFAULT_BRAINS, DEFAULT_PROMPT
from school.sampling_limits import LIMITS
from soul.paths import SoulError

USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a user mistake is one line (and exit code 2), not a usage dump; no abbreviations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --brain must never be taken for --brains
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USER_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive(cast: type, most: int | None = None, why: str = "") -> Any:
    """An argparse type: a finite number above 0 (`--steps 0` or `--minutes -1` would stop at once),
    and at most `most` where more would harm (a learning rate of 1e9 ruins the weights it saves)."""

    def check(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            kind = "a whole number" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}{why}, not {text}")
        return value

    return check


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask to read
        return os.cpu_count() or 1


CORES = _usable_cores()

MOST_STEPS, MOST_MINUTES = 10**9, 10**6
"""Budgets no run reaches (a million minutes is two years), so that 1e30 is a typo, not a plan."""


def _limited(field: str) -> Any:
    """An argparse type for a chat sampling flag: the range the chat pane's /command takes
    (school.sampling_limits), refused in the same words."""
    limit = LIMITS[field]

    def check(text: str) -> Any:
        refusal = limit.refusal(text)
        if refusal:
            raise argparse.ArgumentTypeError(refusal)
        return limit.cast(text)

    return check


MIN_CONTEXT = 8
"""The shortest training window a new baby may have: a window of 1 would see no neighbours at all."""


MAX_CONTEXT = 8192
"""The longest: a window the library cannot fill twice over is refused anyway, and the rotary tables
and the cache grow with it."""


def _context(text: str) -> int:
    value = _positive(int, MAX_CONTEXT)(text)
    if value < MIN_CONTEXT:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_CONTEXT} tokens, not {text}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number in [0, 1) (a dropout of 1 would drop everything)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def _weight_decay(text: str) -> float:
    """AdamW's decay shrinks every weight by lr × decay a step: above 1 it wipes out what was learned."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"must be 0 or more, at most 1, not {text}")
    return value


def weights_arg(text: str) -> Any:
    """An argparse type for `--step live|best|N` (school.weights parses it, for every command)."""
    from school.weights import parse_weights

    try:
        return parse_weights(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


STEP_HELP = "which weights: live (the newest, the default), best (its best held-out self) or a milestone step"


def _given(text: str) -> str:
    """An argparse type for names and paths: `--home ""` would quietly mean the default (the real
    user data folder) and `--library ""` the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a name or a path, or leave the option out")
    return text


# Options that may come before the subcommand or after it (`babyterm --baby notes train` and
# `babyterm train --baby notes` mean the same). Every copy has a SUPPRESS default, so a copy left
# out never overwrites one given elsewhere; the defaults are filled in once, by parse_args.
SHARED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "baby": (("--baby",), dict(type=_given, help="which baby (default: baby)")),
    "home": (
        ("--home",),
        dict(type=_given, help="where babies live (default: $BABYTERM_HOME or the user data folder)"),
    ),
    "library": (
        ("--library",),
        dict(type=_given, help="a text file or folder to learn from (default: Python's docs)"),
    ),
    "val_text": (
        ("--val-text",),
        dict(type=_given, help="a file or folder to score on instead of the library's held-out tail"),
    ),
    "brain": (("--brain",), dict(choices=BRAIN_NAMES, help="for a new baby")),
    "preset": (("--preset",), dict(choices=("tiny", "small", "original"), help="for a new baby")),
    "device": (("--device",), dict(help="auto, cpu, cuda or mps (default: auto)")),
    "precision": (
        ("--precision",),
        dict(
            choices=PRECISIONS,
            help="bf16 autocast or fp32 (default auto: bf16 on CUDA and on CPUs with native bf16)",
        ),
    ),
    "threads": (
        ("--threads",),
        dict(
            type=_positive(int, 2 * CORES, f" (twice this machine's {CORES} cores)"),
            help="torch CPU threads (default: OMP_NUM_THREADS, else the usable cores, up to 8)",
        ),
    ),
    "seed": (
        ("--seed",),
        dict(type=_limited("seed"), help="random seed (default: 1337 to train, none to chat)"),
    ),
    "compile": (
        ("--compile",),
        dict(
            choices=("auto", "on", "off"),
            help="torch.compile the training step: on, off, or auto (on a CPU with a C++ compiler, "
            "for runs of a minute or more; BABYTERM_COMPILE=on|off overrides auto; a failing "
            "compile falls back to eager)",
        ),
    ),
    "vocab_size": (
        ("--vocab-size",),
        dict(type=_positive(int), help="tokenizer size of a new baby (default: the recipe's)"),
    ),
    "context": (
        ("--context",),
        dict(
            type=_context,
            help=f"a new baby's window, {MIN_CONTEXT} to {MAX_CONTEXT} tokens (default: the recipe's)",
        ),
    ),
    "dropout": (("--dropout",), dict(type=_fraction, help="dropout while training (default: the recipe's)")),
    "weight_decay": (
        ("--weight-decay",),
        dict(type=_weight_decay, help="AdamW weight decay (default: the recipe's)"),
    ),
    "lr": (("--lr",), dict(type=_positive(float, 1), help="peak learning rate (default: the recipe's)")),
    "bpe_dropout": (
        ("--bpe-dropout",),
        dict(
            type=_fraction,
            help="chance a training token is read as the two pieces its merge joined, the same text "
            "spelled otherwise (default: the recipe's)",
        ),
    ),
}
DEFAULTS: dict[str, Any] = {
    "baby": "baby",
    "home": None,
    "library": None,
    "val_text": None,
    "brain": None,
    "preset": None,
    "device": "auto",
    "precision": "auto",
    "threads": None,
    "seed": 1337,
    "compile": "auto",
    "vocab_size": None,
    "context": None,
    "dropout": None,
    "weight_decay": None,
    "lr": None,
    "bpe_dropout": None,
}
COMMON = ("baby", "home")
TRAINING = (
    *COMMON,
    "library",
    "val_text",
    "brain",
    "preset",
    "device",
    "precision",
    "threads",
    "seed",
    "compile",
    "vocab_size",
    "context",
    "dropout",
    "weight_decay",
    "lr",
    "bpe_dropout",
)
TAKES: dict[str | None, tuple[str, ...]] = {
    None: TRAINING,  # the app
    "train": TRAINING,
    "chat": (*COMMON, "seed"),
    "watch": COMMON,
    "serve": COMMON,
    "logs": COMMON,
    "info": ("home",),
    "export": COMMON,
    "adopt": COMMON,
    "race": ("home", "library", "preset", "device", "threads", "seed"),
    "xray": COMMON,
}
"""The shared options each command takes; one given before a command that does not take it is refused."""
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    "chat": {"seed": None},
    "adopt": {"baby": None},
    "race": {"preset": "tiny"},
}
TOP = "top_"  # the dest prefix of the copies given before the subcommand


def _shared(
    p: argparse.ArgumentParser, names: tuple[str, ...], prefix: str = "", helps: dict[str, str] | None = None
) -> None:
    for name in names:
        flags, spec = SHARED[name]
        spec = {**spec, "help": (helps or {}).get(name, spec["help"])}
        p.add_argument(*flags, dest=prefix + name, default=argparse.SUPPRESS, **spec)


def version() -> str:
    """The installed distribution's version, else the package's own (a checkout run in place)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("babyterm")
    except PackageNotFoundError:
        from babyterm import __version__

        return __version__


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535, not {text!r}")
    return int(text)


SERVE_DEFAULTS = {"host": "127.0.0.1", "port": 8000, "api_key": None}


def _serve_options(p: argparse.ArgumentParser, optional: bool = False) -> None:
    """Where the HTTP server listens (babyterm.server): `serve`, and `train --serve`. When
    `optional` (train's, which serves only with --serve) they are left unset unless given, so that
    parse_args can refuse them without --serve instead of ignoring them."""

    def default(name: str) -> Any:
        return argparse.SUPPRESS if optional else SERVE_DEFAULTS[name]

    p.add_argument(
        "--host", default=default("host"), help="address to listen on (default 127.0.0.1, loopback)"
    )
    p.add_argument("--port", type=_port, default=default("port"), help="port to listen on (default 8000)")
    p.add_argument(
        "--api-key",
        default=default("api_key"),
        help="bearer key clients must send (default: $BABYTERM_API_KEY); needed off loopback",
    )


CHAT_FLAGS = (
    # flag, the Chat command's field (its default and its range, school.sampling_limits), help
    ("--max-tokens", "max_tokens", None),
    ("--temperature", "temperature", "0 is greedy and deterministic"),
    ("--top-k", "top_k", "0 turns it off"),
    ("--top-p", "top_p", "above 0, up to 1"),
    ("--min-p", "min_p", "drop tokens below this share of the likeliest"),
    ("--dynatemp-range", "dynatemp_range", "temperature ± this, higher when the baby is unsure (0 is off)"),
    (
        "--dynatemp-exp",
        "dynatemp_exponent",
        "how entropy maps to temperature (llama.cpp's dynatemp exponent)",
    ),
    ("--repetition-penalty", "repetition_penalty", "above 1 discourages repeats"),
    ("--emphasis", "emphasis", "strength for words marked *like this*"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="babyterm", description="A baby language model that learns to write from your writing."
    )
    parser.add_argument("--version", action="version", version=f"babyterm {version()}")
    _shared(parser, TAKES[None], TOP)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    train = sub.add_parser("train", help="train headless, one line per logged step")
    _shared(train, TAKES["train"])
    train.add_argument(
        "--steps",
        type=_positive(int, MOST_STEPS),
        default=None,
        help="stop after this many steps of this run",
    )
    train.add_argument(
        "--minutes",
        type=_positive(float, MOST_MINUTES),
        default=None,
        help="stop after this many minutes of this run",
    )

    train.add_argument(
        "--serve", action="store_true", help="answer OpenAI/Ollama clients over HTTP from the live weights"
    )
    _serve_options(train, optional=True)

    chat = sub.add_parser("chat", help="talk to the saved baby (interactive without a prompt)")
    _shared(chat, TAKES["chat"])
    chat.add_argument("prompt", nargs="?", default=None)
    chat.add_argument(
        "--export", metavar="FILE.md", type=_given, default=None, help="write the chat history as Markdown"
    )
    chat.add_argument(
        "--since", default=None, help="with --export: only since a date (2026-12-01) or for a while (2h, 7d)"
    )
    chat.add_argument("--step", type=weights_arg, default=None, help=STEP_HELP)
    asked = Chat(id="", text="")  # the defaults are the Chat command's, which are Sampling's
    for flag, field, help_ in CHAT_FLAGS:
        metavar = flag.removeprefix("--").replace("-", "_").upper()
        chat.add_argument(
            flag, dest=field, metavar=metavar, type=_limited(field), default=getattr(asked, field), help=help_
        )

    watch = sub.add_parser("watch", help="the app, following a baby that trains elsewhere (no training here)")
    _shared(watch, TAKES["watch"])

    serve = sub.add_parser(
        "serve", help="answer OpenAI- and Ollama-compatible clients over HTTP (follows new checkpoints)"
    )
    _shared(serve, TAKES["serve"])
    serve.add_argument(
        "--step", type=weights_arg, default="live", help=STEP_HELP + " (live follows new checkpoints)"
    )
    _serve_options(serve)

    logs = sub.add_parser("logs", help="list runs, or print a run's events")
    _shared(logs, TAKES["logs"])
    logs.add_argument("--run", default=None, help="a run id, or 'latest'")
    logs.add_argument(
        "--kind", default=None, help="only events of this kind (step, eval, guess, scribe, ...)"
    )
    logs.add_argument("--text", default=None, help="only events containing this text")

    _shared(sub.add_parser("info", help="where the soul lives and who lives there"), TAKES["info"])

    export = sub.add_parser(
        "export", help="write the baby for Hugging Face, llama2.c, llama.cpp/Ollama (gguf) or as safetensors"
    )
    _shared(export, TAKES["export"])
    export.add_argument("--format", required=True, choices=("hf", "llama2c", "gguf", "safetensors"))
    export.add_argument("--quant", default="f32", choices=("f32", "q8_0"), help="gguf weights (default f32)")
    export.add_argument(
        "--out", type=_given, default=None, help="an absent or empty folder (default: ./BABY-FORMAT)"
    )
    export.add_argument("--step", type=weights_arg, default=None, help=STEP_HELP)

    xray = sub.add_parser("xray", help="see inside: every stage of the brain's forward pass on TEXT")
    _shared(xray, TAKES["xray"])
    xray.add_argument("text", help="the text to x-ray (the last max_seq_len tokens are read)")
    xray.add_argument("--step", type=weights_arg, default="live", help=STEP_HELP)
    xray.add_argument("--json", action="store_true", help="the numbers as JSON, for scripts")
    xray.add_argument("--top-k", type=_positive(int), default=5, help="next-token guesses per position")

    adopt = sub.add_parser("adopt", help="adopt a llama2.c model.bin or an exported folder as a new baby")
    adopt.add_argument("path", help="model.bin (tokenizer.bin beside it), or a folder")
    _shared(adopt, TAKES["adopt"], helps={"baby": "the new baby's name (default: from the path)"})

    race = sub.add_parser("race", help="race fresh babies of several brains on one library, fairly timed")
    _shared(race, TAKES["race"], helps={"preset": "every racer's size (default: tiny)"})
    race.add_argument(
        "--minutes",
        type=_positive(float, MOST_MINUTES),
        default=2.0,
        help="the whole race's wall time (default: 2)",
    )
    race.add_argument(
        "--brains",
        default=",".join(DEFAULT_BRAINS),
        help=f"comma-separated, from {', '.join(BRAIN_NAMES)} (default: all)",
    )
    race.add_argument(
        "--prompt", default=DEFAULT_PROMPT, help=f"what each answers at the end (default: {DEFAULT_PROMPT!r})"
    )
    race.add_argument("--app", action="store_true", help="watch the race in the app's race view")
    race.add_argument(
        "--replace",
        action="store_true",
        help="start over race-BRAIN babies trained on or talked to since their race (they are lost)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse, then settle the shared options: given after the command, before it, or the default."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command
    for name in SHARED:
        top = vars(args).pop(TOP + name, argparse.SUPPRESS)
        if top is argparse.SUPPRESS:
            continue
        if name not in TAKES[command]:
            flag = SHARED[name][0][0]
            parser.error(f"{flag} does not apply to `babyterm {command}`")
        if not hasattr(args, name):  # given after the command too: the later one wins
            setattr(args, name, top)
    if command == "train":
        given = [name for name in SERVE_DEFAULTS if hasattr(args, name)]
        if given and not args.serve:
            flag = "--" + given[0].replace("_", "-")
            parser.error(f"{flag} applies only to `train --serve`: add --serve, or leave it out")
        for name, value in SERVE_DEFAULTS.items():
            vars(args).setdefault(name, value)
    defaults = {**DEFAULTS, **COMMAND_DEFAULTS.get(command or "", {})}
    for name in TAKES[command]:
        if not hasattr(args, name):
            setattr(args, name, defaults[name])
    return args


def _path_or_none(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def _options(args: argparse.Namespace) -> TrainOptions:
    library = getattr(args, "library", None)
    if library is not None:
        library = str(Path(library).expanduser().resolve())
    return TrainOptions(
        baby=args.baby,
        home=args.home,
        library=library,
        val_text=_path_or_none(getattr(args, "val_text", None)),
        brain=getattr(args, "brain", None),
        preset=getattr(args, "preset", None),
        device=getattr(args, "device", "auto"),
        precision=getattr(args, "precision", "auto"),
        threads=getattr(args, "threads", None),
        seed=getattr(args, "seed", DEFAULTS["seed"]),
        compile=getattr(args, "compile", "auto"),
        vocab_size=getattr(args, "vocab_size", None),
        context=getattr(args, "context", None),
        dropout=getattr(args, "dropout", None),
        weight_decay=getattr(args, "weight_decay", None),
        lr=getattr(args, "lr", None),
        bpe_dropout=getattr(args, "bpe_dropout", None),
        steps=getattr(args, "steps", None),
        minutes=getattr(args, "minutes", None),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from school.library import LibraryError  # torch-free: the app's process never loads torch
    except KeyboardInterrupt:
        print("babyterm: interrupted", file=sys.stderr)
        return INTERRUPTED
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "chat":
            return cmd_chat(args)
        if args.command == "logs":
            return cmd_logs(args)
        if args.command == "watch":
            return cmd_app(args, watch=True)
        if args.command == "serve":
            from babyterm.serving import cmd_serve

            return cmd_serve(args, _options(args))
        if args.command == "info":
            return cmd_info(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "adopt":
            return cmd_adopt(args)
        if args.command == "race":
            return cmd_race(args)
        if args.command == "xray":
            return cmd_xray(args)
        return cmd_app(args)
    except (SoulError, LibraryError) as e:
        print(f"babyterm: {e}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("babyterm: interrupted", file=sys.stderr)
        return INTERRUPTED


def cmd_app(args: argparse.Namespace, watch: bool = False) -> int:
    from babyterm.app import BabytermApp
    from babyterm.link import ProcessLink, prepare_multiprocessing
    from soul.paths import baby_paths, check_home_writable

    options = _options(args)
    paths = baby_paths(options.baby, options.home)
    if watch and not paths.exists():
        raise paths.missing("to watch")
    check_home_writable(paths.home)
    if options.library is not None and not Path(options.library).exists():
        raise SoulError(f"library not found: {options.library}")
    prepare_multiprocessing()
    BabytermApp(options, link_factory=lambda: ProcessLink(options, watch=watch)).run()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from babyterm.printer import Printer
    from babyterm.stopping import stop_on_signals
    from school.commands import Stop
    from school.tutor import Tutor

    tutor = Tutor(_options(args))
    tutor.subscribe(Printer(sys.stdout).show)
    server = None
    if args.serve:
        from babyterm.serving import serve_live

        server = serve_live(tutor, args)
    try:
        with stop_on_signals(lambda: tutor.send(Stop())):
            tutor.run()
    finally:
        if server is not None:
            server.stop()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to the saved baby through the speaker the app uses (school.speaker)."""
    import dataclasses
    import uuid

    from babyterm.chat_settings import ChatSettings, terminal_command
    from babyterm.printer import clean_text
    from school.revive import SavedBaby, revive
    from school.speaker import Speaker
    from soul.paths import baby_paths

    def warn(message: str) -> None:
        print(f"babyterm: {message}", file=sys.stderr)

    paths = baby_paths(args.baby, args.home)
    if args.export is not None:
        return cmd_chat_export(args, paths, warn)
    if args.since is not None:
        raise SoulError("--since goes with --export FILE.md")
    baby = revive(paths, step=args.step)
    for w in baby.warnings:
        warn(w)
    speaker = Speaker(SavedBaby(paths, baby, warn))

    def show(piece: str, weights: str) -> None:
        sys.stdout.write(clean_text(piece))
        sys.stdout.flush()

    sampling = [f.name for f in dataclasses.fields(ChatSettings) if f.name != "weights"]  # each a flag
    flags = ChatSettings(**{name: getattr(args, name) for name in sampling})
    settings = dataclasses.replace(flags)  # the /commands change this one; /reset goes back to flags

    def answer(text: str) -> None:
        if len(text) > MAX_PROMPT_CHARS:
            warn(f"it reads only the last {MAX_PROMPT_CHARS:,} characters")
        speaker.answer(Chat(id=uuid.uuid4().hex, text=text, **settings.command_fields()), show)
        sys.stdout.write("\n")

    if args.prompt is not None:
        answer(args.prompt)
        return 0
    print(f"talking to {paths.name}, {baby.weights} (empty line or Ctrl+D to leave)")
    while True:
        try:
            text = input("you> ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            return 0
        if text.startswith("/"):  # the chat pane's sampling commands; " /x" says "/x" to the baby
            said = terminal_command(settings, flags, text)
            print(said, file=sys.stderr if said.startswith("babyterm:") else sys.stdout)
            continue
        answer(text)


def cmd_chat_export(args: argparse.Namespace, paths: Any, warn: Any) -> int:
    """`babyterm chat --export FILE.md`: the history as Markdown (school.transcript), no weights loaded."""
    from school.transcript import export_baby_transcript

    if args.prompt is not None:
        raise SoulError("--export writes the history; it takes no prompt")
    n = export_baby_transcript(paths, Path(args.export), args.since, warn=warn)
    print(f"wrote {n} exchange{'s' if n != 1 else ''} with {paths.name} to {args.export}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    import json

    from school.counsellor import filter_events, list_runs, read_log
    from school.events import EVENT_TYPES
    from soul.paths import baby_paths

    if args.kind is not None and args.kind not in EVENT_TYPES:
        raise SoulError(f"no event kind {args.kind!r}: choose from {', '.join(sorted(EVENT_TYPES))}")
    paths = baby_paths(args.baby, args.home)
    runs = list_runs(paths.logs) if paths.logs.is_dir() else []
    if not runs:
        raise SoulError(f"no logs for baby {paths.name!r} in {paths.home}")
    if args.run is None and args.kind is None and args.text is None:
        print(f"{'run':<22} {'steps':>8} {'best bpb':>9}  events")  # held-out bits per byte
        for r in runs:
            best = f"{r.best_val_bpb:.3f}" if r.best_val_bpb is not None else "-"
            print(f"{r.run_id:<22} {r.last_step if r.last_step is not None else 0:>8} {best:>9}  {r.events}")
        return 0
    chosen = [r for r in runs if args.run in (None, r.run_id)] if args.run != "latest" else runs[-1:]
    if not chosen:
        raise SoulError(
            f"no run {args.run!r} for baby {paths.name!r} (see: babyterm logs --baby {paths.name})"
        )
    found = 0
    for r in chosen:
        for record in filter_events(read_log(r.path), args.kind, args.text):
            print(json.dumps(record, ensure_ascii=False))
            found += 1
    if not found:  # said on stderr, so a script reading stdout still gets nothing but JSON lines
        what = " ".join(
            w for w in (args.kind and f"{args.kind!r}", "events", args.text and "with that text") if w
        )
        where = f"run {chosen[0].run_id}" if len(chosen) == 1 else f"the {len(chosen)} runs"
        print(f"babyterm: no {what} in {where}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from soul.paths import list_babies, resolve_home
    from soul.record import BabyRecord

    home = resolve_home(args.home)
    print(f"home: {home}")
    babies = list_babies(home)
    if not babies:
        print("no babies yet: run `babyterm` or `babyterm train` to start one")
        return 0
    from soul.checkpoint import newest_whole

    for paths in babies:
        try:
            record = BabyRecord.load(paths)
        except SoulError as e:
            print(f"  {paths.name}: {e}")
            continue
        size = sum(f.stat().st_size for f in paths.root.rglob("*") if f.is_file())
        step, damaged = newest_whole(paths.checkpoints)
        print(
            f"  {paths.name:<16} {record.brain_name:<12} {record.preset:<9} {_params(record):>10} params  "
            f"step {step:>8}  {size / 1e6:7.1f} MB  {record.library or 'built-in docs'}"
        )
        for name, why in damaged:  # what the next run will skip, said now rather than then
            then = f"the baby goes on from step {step:,}" if step else "no whole checkpoint is left"
            print(f"    checkpoint {name} is damaged ({why}): {then}")
    return 0


def _params(record: Any) -> str:
    import torch

    from brain import build_brain, config_from_dict

    with torch.device("meta"):  # counts parameters without allocating them
        n = build_brain(config_from_dict(record.brain)).num_params()
    return f"{n / 1e6:.2f}M"


def cmd_export(args: argparse.Namespace) -> int:
    from school.exports import export
    from school.revive import revive
    from soul.paths import baby_paths

    paths = baby_paths(args.baby, args.home)
    out = Path(args.out) if args.out else Path(f"{paths.name}-{args.format}")
    source = paths if args.step in (None, "live") else revive(paths, step=args.step)
    files = export(source, args.format, out, args.quant)
    print(f"exported {paths.name} as {args.format} to {out}: {', '.join(f.name for f in files)}")
    if args.format == "gguf":
        print(f"for Ollama: ollama create {paths.name} -f {out / 'Modelfile'}")
    return 0


def cmd_race(args: argparse.Namespace) -> int:
    """The race in the terminal (school.race through babyterm.race_printer), or in the app's view."""
    options = {k: getattr(args, k) for k in ("preset", "device", "threads", "seed", "prompt", "replace")}
    library = _path_or_none(args.library)
    if library is not None and not Path(library).exists():
        raise SoulError(f"library not found: {library}")
    if args.app:
        from babyterm.race_app import run_race_app

        return run_race_app(library, args.minutes, args.brains, args.home, **options)
    from babyterm.race_printer import print_race

    print_race(library, args.minutes, args.brains, args.home, sys.stdout, **options)
    return 0


def cmd_xray(args: argparse.Namespace) -> int:
    """Print (or dump as JSON) one x-ray of the saved baby on TEXT."""
    import json

    from babyterm.xray_text import report
    from school.revive import revive
    from school.tokenizer import encode_prompt
    from school.xray import xray
    from school.xray.learning import learning_of
    from soul.paths import baby_paths

    step = None if args.step == "live" else args.step
    paths = baby_paths(args.baby, args.home)
    baby = revive(paths, step=step)
    for w in baby.warnings:
        print(f"babyterm: {w}", file=sys.stderr)
    learning = baby.updates if step is None else learning_of(paths, step, None)
    window = baby.model.config.max_seq_len
    ids = encode_prompt(baby.tokenizer, args.text, baby.record.bos_prompt)
    if len(ids) > window:
        print(f"babyterm: it reads only the last {window:,} tokens (its window)", file=sys.stderr)
    try:
        shot = xray(
            baby.model,
            baby.tokenizer,
            args.text,
            args.top_k,
            weights=baby.weights,
            learning=learning,
            ids=ids[-window:],  # encoded once: as encode_for_xray would, the window's last tokens
        )
    except ValueError as e:
        raise SoulError(str(e)) from None
    raw = shot.to_dict()
    data, broken = _finite(raw)
    if broken:
        print(
            f"babyterm: {broken:,} of its numbers are not finite (nan or inf): its weights are wild; "
            "an earlier --step may be whole",
            file=sys.stderr,
        )
    if args.json:
        json.dump(data, sys.stdout, allow_nan=False)  # strict JSON: null where a number is not finite
        sys.stdout.write("\n")
    else:
        print("\n".join(report(raw)))  # a nan prints as nan
    return 0


def _finite(data: Any) -> tuple[Any, int]:
    """`data` with every nan and inf made None (JSON has no such numbers), and how many there were."""
    if isinstance(data, float):
        return (data, 0) if math.isfinite(data) else (None, 1)
    if isinstance(data, dict):
        pairs = [(k, *_finite(v)) for k, v in data.items()]
        return {k: v for k, v, _ in pairs}, sum(n for _, _, n in pairs)
    if isinstance(data, list | tuple):
        items = [_finite(v) for v in data]
        return [v for v, _ in items], sum(n for _, n in items)
    return data, 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from school.exports.adopt import adopt

    done = adopt(args.path, args.baby, args.home)
    print(
        f"adopted {done.source} ({done.fmt}, {done.params / 1e6:.2f}M params) as {done.paths.name}; "
        f"talk: babyterm chat --baby {done.paths.name}   teach: babyterm train --baby {done.paths.name}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
