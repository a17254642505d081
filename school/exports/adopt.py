"""Adopting a model made elsewhere as a new baby: llama2.c files, an hf export, a safetensors export.

    llama2c       a folder with model.bin (or one other *.bin) and tokenizer.bin, or the model's .bin
                  path with tokenizer.bin beside it; e.g. karpathy's TinyStories models
    hf            a Llama folder as `babyterm export --format hf` writes it (config.json with
                  model_type "llama", model.safetensors, tokenizer.json with our id layout)
    safetensors   a folder as `babyterm export --format safetensors` writes it (either brain)

The new soul holds config.json (preset "adopted", Python's docs as its library until the user
gives one), tokenizer.json and a step-0 checkpoint with a fresh trainer state, so `babyterm chat`
talks to it at once and `babyterm train` keeps teaching it. The pixel head, which no format
carries, starts from a fresh init, and the pixel input at zero (the model is the baby at grey).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from brain import Brain, BrainConfig, build_brain
from school.exports.llama import model_from_stacked
from school.metabolism import Metabolism
from school.syllabus import SYLLABI, Syllabus
from school.tokenizer import save_tokenizer
from soul import checkpoint as ckpt
from soul import codec
from soul.paths import BabyPaths, SoulError, baby_paths, check_home_writable
from soul.record import BabyRecord

ADOPTED = "adopted"
SMALL_PARAMS = 3_000_000  # from about the small preset's size up, its gentler syllabus
FINE_TUNE_LR = 0.1  # of the preset's learning rates
SEED = 1337  # TrainOptions' default seed: the RNG states a newborn tutor would start from


def adopted_syllabus(params: int) -> Syllabus:
    """The syllabus of the preset nearest in size, at a tenth of its learning rate: an adopted model
    already knows its language, and a rate meant for random weights would wash that out in the first
    few hundred steps of the user's own writing."""
    preset = SYLLABI["small" if params >= SMALL_PARAMS else "tiny"]
    return dataclasses.replace(preset, lr=preset.lr * FINE_TUNE_LR, min_lr=preset.min_lr * FINE_TUNE_LR)


@dataclass(frozen=True)
class Adoption:
    paths: BabyPaths
    fmt: str
    """What was adopted: llama2c, hf or safetensors."""
    source: Path
    params: int


def adopt(path: str | Path, baby: str | None = None, home: str | Path | None = None) -> Adoption:
    """Make the model at `path` a new baby named `baby` (default: from the file or folder name).

    Raises SoulError (one line) when the baby exists, files are missing, or the model or tokenizer
    is malformed; nothing is left behind then.
    """
    path = Path(path).expanduser()
    fmt, source = detect(path)
    paths = baby_paths(baby or default_name(source), home)
    if paths.exists() or (paths.root.exists() and any(paths.root.iterdir())):
        raise SoulError(f"a baby named {paths.name!r} already lives in {paths.home}; choose another --baby")
    model, tok = load_model(fmt, source)
    if tok.get_vocab_size() != model.config.vocab_size:
        raise SoulError(
            f"{source}: the tokenizer has {tok.get_vocab_size()} tokens, the model {model.config.vocab_size}"
        )
    check_home_writable(paths.home)
    params = model.num_params()
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        save_tokenizer(tok, paths.tokenizer)
        ckpt.save_checkpoint(paths.checkpoints, 0, ckpt.model_tensors(model), {}, newborn_state())
        record = BabyRecord(model.config.to_dict(), ADOPTED, adopted_syllabus(params).to_dict(), None)
        # llama2.c and hf models were trained with <s> before text; their pieces are their own
        record.conventions = {"split": "tail", "bos": "document-start"}
        record.save(paths)  # last: a baby exists once its config.json does
    except BaseException:
        shutil.rmtree(paths.root, ignore_errors=True)
        raise
    return Adoption(paths, fmt, source, params)


def detect(path: Path) -> tuple[str, Path]:
    """(format, the model file or folder) of what the user pointed at."""
    if not path.exists():
        raise SoulError(f"{path} not found")
    if path.is_file():
        if path.name == "tokenizer.bin":
            raise SoulError(f"{path} is a tokenizer; point at the model .bin beside it")
        if path.suffix == ".bin":
            return "llama2c", path
        if path.name in ("config.json", "model.safetensors", "tokenizer.json"):
            return detect(path.parent)
        raise SoulError(f"{path} is neither a llama2.c model.bin nor an exported folder")
    bins = [p for p in sorted(path.glob("*.bin")) if p.name != "tokenizer.bin"]
    if (path / "model.bin").is_file():
        return "llama2c", path / "model.bin"
    if (path / "config.json").is_file():
        try:
            conf = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SoulError(f"{path / 'config.json'} is not readable JSON ({e})") from None
        if isinstance(conf, dict) and "brain" in conf:
            return "safetensors", path
        return "hf", path
    if len(bins) == 1:
        return "llama2c", bins[0]
    if bins:
        raise SoulError(f"{path} holds several .bin files; name the model file itself")
    raise SoulError(f"{path} holds no model.bin and no config.json: nothing to adopt")


def default_name(source: Path) -> str:
    """A baby name from a file or folder name: `stories15M.bin` -> `stories15M`."""
    if source.is_dir():
        stem = source.resolve().name
    elif source.name == "model.bin":
        stem = source.resolve().parent.name
    else:
        stem = source.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip(".-_")[:64]
    return name or ADOPTED


def load_model(fmt: str, source: Path) -> tuple[Brain, Tokenizer]:
    """The model (float32, on the CPU, eval mode) and tokenizer at `source`, checked."""
    if fmt == "llama2c":
        from school.exports.llama2c import (
            config_from_header,
            read_model_bin,
            read_tokenizer_bin,
            stacked_from_bin,
            tokenizer_from_bin,
        )

        header, tensors = read_model_bin(source)
        cfg = config_from_header(header, source)
        pieces, scores, _ = read_tokenizer_bin(source.parent / "tokenizer.bin", cfg.vocab_size)
        return model_from_stacked(cfg, stacked_from_bin(tensors), SEED), tokenizer_from_bin(pieces, scores)
    if fmt == "hf":
        from school.exports.hf import read_hf

        tcfg, stacked, tok = read_hf(source)
        return model_from_stacked(tcfg, stacked, SEED), tok
    from school.exports.safetensors_export import read_safetensors_export

    cfg, weights, tok = read_safetensors_export(source)
    return _built(cfg, weights), tok


def _built(cfg: BrainConfig, weights: dict[str, torch.Tensor]) -> Brain:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = build_brain(cfg)
    ckpt.load_model_tensors(model, weights)
    return model.eval()


def newborn_state() -> dict[str, Any]:
    """The trainer state (school.tutor.Tutor.trainer_state) of a tutor that has not taught yet."""
    gen = torch.Generator().manual_seed(SEED)
    return {
        "step": 0,
        "tokens_seen": 0,
        "elapsed_s": 0.0,
        "rng": {
            "batch": codec.tensor_to_bytes(gen.get_state()),
            "torch": codec.tensor_to_bytes(gen.get_state()),
            "python": codec.random_state_to_json(random.Random(SEED).getstate()),
        },
        "metabolism": Metabolism().state_dict(),
        "pixel": [0.5, 0.5, 0.5],
        "pixel_target": [0.5, 0.5, 0.5],
    }
