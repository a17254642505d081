"""The `babyterm` command: the app by default, and train / chat / logs / info headless."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from school.options import MAX_PROMPT_CHARS, PRECISIONS, TrainOptions
from soul.paths import SoulError

USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a user mistake is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USER_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baby", default="baby", help="which baby (default: baby)")
    p.add_argument(
        "--home", default=None, help="where babies live (default: $BABYTERM_HOME or the user data folder)"
    )


def _training(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--library", default=None, help="a text file or folder to learn from (default: Python's docs)"
    )
    p.add_argument("--brain", choices=("transformer", "babyllm"), default=None, help="for a new baby")
    p.add_argument("--preset", choices=("tiny", "small", "original"), default=None, help="for a new baby")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="bf16 autocast or fp32 (default auto: bf16 on CUDA and on CPUs with native bf16)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores, up to 8)"
    )
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--compile", action="store_true", help="torch.compile the training step (try it on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="babyterm", description="A baby language model that learns to write from your writing."
    )
    _common(parser)
    _training(parser)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    train = sub.add_parser("train", help="train headless, one line per logged step")
    _common(train)
    _training(train)
    train.add_argument("--steps", type=int, default=None, help="stop after this many steps of this run")
    train.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of this run")

    chat = sub.add_parser("chat", help="talk to the saved baby (interactive without a prompt)")
    _common(chat)
    chat.add_argument("prompt", nargs="?", default=None)
    chat.add_argument("--step", type=int, default=None, help="talk to the milestone of this step instead")
    chat.add_argument("--max-tokens", type=int, default=120)
    chat.add_argument("--temperature", type=float, default=0.8, help="0 is greedy and deterministic")
    chat.add_argument("--top-k", type=int, default=40, help="0 turns it off")
    chat.add_argument("--top-p", type=float, default=None)
    chat.add_argument("--repetition-penalty", type=float, default=1.0)
    chat.add_argument("--emphasis", type=float, default=2.0, help="strength for words marked *like this*")
    chat.add_argument("--seed", type=int, default=None)

    watch = sub.add_parser("watch", help="the app, following a baby that trains elsewhere (no training here)")
    _common(watch)

    logs = sub.add_parser("logs", help="list runs, or print a run's events")
    _common(logs)
    logs.add_argument("--run", default=None, help="a run id, or 'latest'")
    logs.add_argument(
        "--kind", default=None, help="only events of this kind (step, eval, guess, scribe, ...)"
    )
    logs.add_argument("--text", default=None, help="only events containing this text")

    sub.add_parser("info", help="where the soul lives and who lives there").add_argument(
        "--home", default=None
    )

    export = sub.add_parser(
        "export", help="write the baby for Hugging Face, llama2.c, llama.cpp/Ollama (gguf) or as safetensors"
    )
    _common(export)
    export.add_argument("--format", required=True, choices=("hf", "llama2c", "gguf", "safetensors"))
    export.add_argument("--quant", default="f32", choices=("f32", "q8_0"), help="gguf weights (default f32)")
    export.add_argument("--out", default=None, help="an absent or empty folder (default: ./BABY-FORMAT)")

    adopt = sub.add_parser("adopt", help="adopt a llama2.c model.bin or an exported folder as a new baby")
    adopt.add_argument("path", help="model.bin (tokenizer.bin beside it), or a folder")
    adopt.add_argument("--baby", default=None, help="the new baby's name (default: from the path)")
    adopt.add_argument("--home", default=None)
    return parser


def _options(args: argparse.Namespace) -> TrainOptions:
    library = getattr(args, "library", None)
    if library is not None:
        library = str(Path(library).expanduser().resolve())
    return TrainOptions(
        baby=args.baby,
        home=args.home,
        library=library,
        brain=args.brain,
        preset=args.preset,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        seed=args.seed,
        compile=getattr(args, "compile", False),
        steps=getattr(args, "steps", None),
        minutes=getattr(args, "minutes", None),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from school.librarian import LibraryError

    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "chat":
            return cmd_chat(args)
        if args.command == "logs":
            return cmd_logs(args)
        if args.command == "watch":
            return cmd_app(args, watch=True)
        if args.command == "info":
            return cmd_info(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "adopt":
            return cmd_adopt(args)
        return cmd_app(args)
    except (SoulError, LibraryError) as e:
        print(f"babyterm: {e}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("babyterm: interrupted", file=sys.stderr)
        return 130


def cmd_app(args: argparse.Namespace, watch: bool = False) -> int:
    from babyterm.app import BabytermApp
    from babyterm.link import ProcessLink, prepare_multiprocessing
    from soul.paths import baby_paths, check_home_writable

    options = _options(args)
    paths = baby_paths(options.baby, options.home)
    if watch and not paths.exists():
        raise SoulError(f"no baby named {paths.name!r} in {paths.home} to watch")
    check_home_writable(paths.home)
    if options.library is not None and not Path(options.library).exists():
        raise SoulError(f"library not found: {options.library}")
    prepare_multiprocessing()
    BabytermApp(options, link_factory=lambda: ProcessLink(options, watch=watch)).run()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from babyterm.printer import Printer
    from school.tutor import Tutor

    tutor = Tutor(_options(args))
    tutor.subscribe(Printer(sys.stdout).show)
    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt  # a second Ctrl+C does not wait for the save
        print("\nsaving… (Ctrl+C again to quit without saving)", file=sys.stderr)
        tutor.send({"cmd": "stop"})

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        tutor.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from babyterm.printer import clean_text
    from brain.generate import generate
    from school.emphasis import emphasis_bias, parse_marks
    from school.revive import revive
    from school.speaker import sampling_from
    from school.tokenizer import decode
    from soul.jsonl import append_jsonl
    from soul.paths import baby_paths

    paths = baby_paths(args.baby, args.home)
    baby = revive(paths, step=args.step)
    for w in baby.warnings:
        print(f"babyterm: {w}", file=sys.stderr)
    sampling = sampling_from(
        {
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "seed": args.seed,
            "repetition_penalty": args.repetition_penalty,
            "max_tokens": args.max_tokens,
        }
    )

    def answer(text: str) -> None:
        if len(text) > MAX_PROMPT_CHARS:
            print(f"babyterm: it reads only the last {MAX_PROMPT_CHARS:,} characters", file=sys.stderr)
            text = text[-MAX_PROMPT_CHARS:]
        ids: list[int] = []
        shown = ""
        plain, spans = parse_marks(text)
        prompt, bias = emphasis_bias(baby.tokenizer, plain + "\n", spans, args.emphasis)
        for choice in generate(baby.model, prompt, sampling, emphasis=bias):
            ids.append(choice.id)
            whole = decode(baby.tokenizer, ids)
            if whole.startswith(shown):
                sys.stdout.write(clean_text(whole[len(shown) :]))
                sys.stdout.flush()
                shown = whole
            if whole.endswith("\n\n") or choice.id == 2:
                break
        sys.stdout.write("\n")
        for role, said in (("you", text), ("baby", shown.strip("\n"))):
            append_jsonl(paths.chat, {"role": role, "text": said, "step": baby.step, "weights": baby.weights})

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
        answer(text)


def cmd_logs(args: argparse.Namespace) -> int:
    import json

    from school.counsellor import filter_events, list_runs, read_log
    from soul.paths import baby_paths

    paths = baby_paths(args.baby, args.home)
    runs = list_runs(paths.logs) if paths.logs.is_dir() else []
    if not runs:
        raise SoulError(f"no logs for baby {paths.name!r} in {paths.home}")
    if args.run is None and args.kind is None and args.text is None:
        print(f"{'run':<22} {'steps':>8} {'best val':>9}  events")
        for r in runs:
            best = f"{r.best_val_loss:.3f}" if r.best_val_loss is not None else "-"
            print(f"{r.run_id:<22} {r.last_step if r.last_step is not None else 0:>8} {best:>9}  {r.events}")
        return 0
    chosen = [r for r in runs if args.run in (None, r.run_id)] if args.run != "latest" else runs[-1:]
    if not chosen:
        raise SoulError(
            f"no run {args.run!r} for baby {paths.name!r} (see: babyterm logs --baby {paths.name})"
        )
    for r in chosen:
        for record in filter_events(read_log(r.path), args.kind, args.text):
            print(json.dumps(record, ensure_ascii=False))
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
    from school.revive import checkpoint_step

    for paths in babies:
        try:
            record = BabyRecord.load(paths)
        except SoulError as e:
            print(f"  {paths.name}: {e}")
            continue
        size = sum(f.stat().st_size for f in paths.root.rglob("*") if f.is_file())
        print(
            f"  {paths.name:<16} {record.brain_name:<12} {record.preset:<9} {_params(record):>10} params  "
            f"step {checkpoint_step(paths):>8}  {size / 1e6:7.1f} MB  {record.library or 'built-in docs'}"
        )
    return 0


def _params(record: Any) -> str:
    import torch

    from brain import build_brain, config_from_dict

    with torch.device("meta"):  # counts parameters without allocating them
        n = build_brain(config_from_dict(record.brain)).num_params()
    return f"{n / 1e6:.2f}M"


def cmd_export(args: argparse.Namespace) -> int:
    from soul.exports import export
    from soul.paths import baby_paths

    paths = baby_paths(args.baby, args.home)
    out = Path(args.out) if args.out else Path(f"{paths.name}-{args.format}")
    files = export(paths, args.format, out, args.quant)
    print(f"exported {paths.name} as {args.format} to {out}: {', '.join(f.name for f in files)}")
    if args.format == "gguf":
        print(f"for Ollama: ollama create {paths.name} -f {out / 'Modelfile'}")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from soul.exports.adopt import adopt

    done = adopt(args.path, args.baby, args.home)
    print(
        f"adopted {done.source} ({done.fmt}, {done.params / 1e6:.2f}M params) as {done.paths.name}; "
        f"talk: babyterm chat --baby {done.paths.name}   teach: babyterm train --baby {done.paths.name}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
