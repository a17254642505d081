"""Opening the school for one baby: its soul, its library, its syllabus and the device it learns on."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from brain import BRAIN_NAMES, preset_config
from brain.presets import PRESET_NAMES
from school import precision as probe
from school import recipe as recipes
from school.librarian import Librarian
from school.library import Library
from school.options import PRECISIONS, TrainOptions
from school.syllabus import SYLLABI, Syllabus
from school.tokenizer import MIN_VOCAB
from soul.paths import BabyPaths, SoulError, baby_paths, check_home_writable
from soul.record import BabyRecord

DEFAULT_BRAIN = "transformer"  # reaches the lower validation bits per byte in 5 CPU minutes (README)
DEFAULT_VOCAB = 4200  # with a named preset; without one the recipe chooses
CONVENTIONS = {"split": "tail", "pieces": "words-v2", "bos": "document-start"}
"""What a baby born now records (soul/record.py): held-out tails, pieces within words, <s> first."""


MAX_THREADS = 8
"""More torch threads than this gain nothing at a baby's sizes and starve the app of a core."""


def default_threads() -> int:
    """Torch CPU threads when --threads is not given: OMP_NUM_THREADS where the user set it, else
    the cores this process may run on (taskset, a container's cpuset), up to MAX_THREADS.

    Both matter on a shared 2-core machine: two torch processes of 2 threads each, side by side,
    spin against each other and each runs several times slower than alone."""
    try:
        asked = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        asked = 0
    if asked > 0:
        return asked
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask to read
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def resolve_device(name: str) -> torch.device:
    """auto picks CUDA, then Apple's MPS, then the CPU; an explicit choice must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise SoulError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise SoulError("--device cuda: no CUDA GPU is available here (try --device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SoulError("--device mps: Apple's MPS is not available here (try --device auto)")
    return torch.device(name)


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise SoulError(f"unknown precision {name!r}: choose {', '.join(PRECISIONS)}")


def resolve_precision(name: str, device: torch.device, brain: dict | None = None) -> str:
    """auto: bf16 autocast where it is native and, on a CPU, measured faster; else fp32.

    brain: the baby's brain config (as config.json holds it); a CPU with native bf16 (AVX-512 BF16
    or AMX) takes bf16 when a short probe of that brain's training step finds it faster
    (school/precision.py). Without a brain, a native-bf16 CPU takes bf16.
    """
    check_precision(name)
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        if brain is None:
            return "bf16" if probe.cpu_has_native_bf16() else "fp32"
        return "bf16" if probe.cpu_prefers_bf16(brain) else "fp32"
    return "fp32"  # MPS: bf16 autocast support depends on the macOS version


@dataclass
class Classroom:
    """What the tutor works with; built by open_classroom."""

    paths: BabyPaths
    record: BabyRecord
    librarian: Librarian
    syllabus: Syllabus
    device: torch.device
    precision: str = "fp32"
    """"bf16": training matmuls run under bf16 autocast (weights, optimizer, loss and eval stay fp32)."""

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def hello(self, model: torch.nn.Module) -> str:
        """The trainer's introduction (StateEvent detail, JSON): who is learning, on what."""
        params = sum(p.numel() for p in model.parameters())
        return json.dumps(
            {
                "baby": self.paths.name,
                "brain": self.record.brain_name,
                "preset": self.record.preset,
                "params": params,
                "device": str(self.device),
                "precision": self.precision,
                "library": self.record.library or "Python's built-in docs",
            }
        )


def _refuse_mismatch(paths: BabyPaths, record: BabyRecord, options: TrainOptions) -> None:
    asked = {
        "brain": options.brain,
        "preset": options.preset,
        "vocabulary": options.vocab_size,
        "context": options.context,
    }
    has = {
        "brain": record.brain_name,
        "preset": record.preset,
        "vocabulary": record.vocab_size,
        "context": int(record.brain["max_seq_len"]),
    }
    for what, value in asked.items():
        if value is not None and value != has[what]:
            raise SoulError(
                f"baby {paths.name!r} has {what} {has[what]}, not {value}; "
                f"start a new baby with --baby NEW_NAME to use {value}"
            )


def open_classroom(
    options: TrainOptions,
    syllabus_overrides: dict[str, Any],
    brain_overrides: dict[str, Any],
    progress: Callable[[str, float, str], None],
    warn: Callable[[str], None],
    readonly: bool = False,
) -> Classroom:
    """Load the baby, or give birth to it; raise SoulError/LibraryError (one line) on bad input.

    readonly: open an existing baby without writing (the non-lead ranks of a cohort).
    """
    paths = baby_paths(options.baby, options.home)
    device = resolve_device(options.device)
    check_precision(options.precision)  # before a birth: a bad name costs nothing
    if device.type == "cpu":
        torch.set_num_threads(options.threads or default_threads())
    if paths.exists():
        record = BabyRecord.load(paths)
        _refuse_mismatch(paths, record, options)
        if options.library is not None and options.library != record.library:
            record.library = options.library  # the same baby may move on to new writing
        _take_overrides(record, options)
        librarian = Librarian.prepare(
            paths,
            record.library,
            record.vocab_size,
            progress=progress,
            log=warn,
            block_size=int(record.brain["max_seq_len"]),
            split=record.split,
            val_text=options.val_text,
        )
        if librarian.vocab_size != record.vocab_size:
            raise SoulError(
                f"baby {paths.name!r}: tokenizer.json has {librarian.vocab_size} tokens but the brain "
                f"expects {record.vocab_size}; the soul is inconsistent"
            )
        if not readonly:
            record.save(paths)
    else:
        if readonly:
            raise SoulError(f"baby {paths.name!r} does not exist yet (the lead rank should have made it)")
        record, librarian = _give_birth(paths, options, brain_overrides, device, progress, warn)
    syllabus = Syllabus.from_dict({**record.syllabus, **syllabus_overrides})
    chosen = resolve_precision(options.precision, device, record.brain)
    return Classroom(paths, record, librarian, syllabus, device, chosen)


def _give_birth(paths, options, brain_overrides, device, progress, warn) -> tuple[BabyRecord, Librarian]:
    brain = options.brain or DEFAULT_BRAIN
    preset = options.preset or ("tiny" if device.type == "cpu" else "small")
    if brain not in BRAIN_NAMES:
        raise SoulError(f"unknown brain {brain!r}: choose one of {', '.join(BRAIN_NAMES)}")
    if preset not in PRESET_NAMES:
        raise SoulError(f"unknown preset {preset!r}: choose one of {', '.join(PRESET_NAMES)}")
    check_home_writable(paths.home)
    if options.vocab_size is not None and options.vocab_size < MIN_VOCAB:  # before the speed probe
        raise SoulError(
            f"--vocab-size must be at least {MIN_VOCAB} (259 bytes and specials, and a few pieces)"
        )
    # fresh: nothing there yet but, perhaps, the lock of the trainer giving birth
    fresh = not paths.root.exists() or all(p.name == paths.lock.name for p in paths.root.iterdir())
    for stale in (paths.tokenizer, paths.corpus):  # left by a birth that failed half-way
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    try:
        chosen = None
        if options.preset is None and brain == DEFAULT_BRAIN:  # no named size: fit it to the library
            size = Library.open(options.library).n_bytes  # silent: Librarian.prepare logs what it skips
            try:
                pinned = recipes.pinned_speed()
            except ValueError as e:
                raise SoulError(str(e)) from None
            if pinned is None:
                progress("measuring", 0.0, "how fast this machine learns")
                speed, pin = recipes.measure_speed(device), ""
            else:
                speed, pin = pinned, f" (pinned by {recipes.SPEED_ENV})"
            progress("measuring", 1.0, f"{speed:,.0f} tokens/s{pin}")
            chosen = recipes.choose(
                size,
                speed,
                vocab_size=options.vocab_size,
                context=options.context,
                dropout=options.dropout,
                weight_decay=options.weight_decay,
                lr=options.lr,
                bpe_dropout=options.bpe_dropout,
            )
            preset = "recipe"
            shape = {**chosen.brain(), **brain_overrides}
            vocab = chosen.vocab_size
        else:
            shape = {**_brain_options(options), **brain_overrides}
            vocab = options.vocab_size or DEFAULT_VOCAB
        block = _config(brain, preset, vocab, shape).max_seq_len
        librarian = Librarian.prepare(
            paths,
            options.library,
            vocab,
            progress=progress,
            log=warn,
            block_size=block,
            split=CONVENTIONS["split"],
            val_text=options.val_text,
        )
        config = _config(brain, preset, librarian.vocab_size, shape)
        if options.vocab_size is not None and librarian.vocab_size < vocab:  # the recipe's own fit is silent
            warn(
                f"the library has pieces for a vocabulary of {librarian.vocab_size:,}, not {vocab:,}: "
                f"the baby has {librarian.vocab_size:,}"
            )
        if chosen is not None:
            chosen = dataclasses.replace(chosen, vocab_size=librarian.vocab_size)  # what it was born with
            syllabus = {**Syllabus().to_dict(), **chosen.syllabus()}
        else:
            syllabus = {**SYLLABI[preset].to_dict(), **_syllabus_options(options)}
        record = BabyRecord(
            config.to_dict(),
            preset,
            syllabus,
            options.library,
            conventions=dict(CONVENTIONS),
            recipe=chosen.to_dict() if chosen is not None else {},
        )
        record.save(paths)  # written last: a baby exists once its config.json does
    except BaseException:
        if fresh and paths.root.is_dir():  # a failed birth leaves nothing (the lock goes with its holder)
            for leftover in paths.root.iterdir():
                if leftover.name != paths.lock.name:
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        raise
    return record, librarian


def _config(brain: str, preset: str, vocab: int, shape: dict[str, Any]) -> Any:
    """The brain's config: a preset's shape (the recipe's starts from tiny's), then `shape` on top."""
    return preset_config(brain, "tiny" if preset == "recipe" else preset, vocab, **shape)


def _brain_options(options: TrainOptions) -> dict[str, Any]:
    """The brain fields the user chose on the command line (for a new baby)."""
    chosen = {"max_seq_len": options.context, "dropout": options.dropout}
    return {k: v for k, v in chosen.items() if v is not None}


def _syllabus_options(options: TrainOptions) -> dict[str, Any]:
    chosen: dict[str, Any] = {"weight_decay": options.weight_decay, "bpe_dropout": options.bpe_dropout}
    if options.lr is not None:
        chosen |= {"lr": options.lr, "min_lr": options.lr / 10}
    return {k: v for k, v in chosen.items() if v is not None}


def _take_overrides(record: BabyRecord, options: TrainOptions) -> None:
    """A grown baby takes a new dropout, weight decay, learning rate or BPE-dropout (kept in its record)."""
    if options.dropout is not None and "dropout" in record.brain:
        record.brain["dropout"] = options.dropout
    record.syllabus.update(_syllabus_options(options))
