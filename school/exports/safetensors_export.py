"""The baby's weights alone, under our own names, with its brain config and tokenizer beside them.

    model.safetensors   every tensor of the brain (a tied head once, as in checkpoints)
    config.json         the brain's config, `{"brain": "transformer" | "babyllm", ...}`
    tokenizer.json      the `tokenizers` BPE (school.tokenizer)

Works for both brains. `brain.build_brain(config_from_dict(config))` plus
`soul.checkpoint.load_model_tensors` rebuild the model; `babyterm adopt` takes the folder back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from tokenizers import Tokenizer

from brain import Brain, BrainConfig, config_from_dict
from school.exports.source import Source, into_fresh_folder, revived
from school.tokenizer import load_tokenizer, save_tokenizer
from soul.atomic import write_json_atomic
from soul.checkpoint import model_tensors
from soul.paths import SoulError


def export_safetensors(source: Source, out_dir: Path) -> list[Path]:
    """Export a baby of either brain into `out_dir` (absent or empty); returns the files written."""
    baby = revived(source)
    return into_fresh_folder(out_dir, lambda folder: write_safetensors(baby.model, baby.tokenizer, folder))


def write_safetensors(model: Brain, tok: Tokenizer, out_dir: Path) -> None:
    """Write model.safetensors, config.json and tokenizer.json into the folder `out_dir`."""
    out_dir = Path(out_dir)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model_tensors(model).items()}
    save_file(tensors, out_dir / "model.safetensors", metadata={"format": "pt", "brain": model.config.brain})
    write_json_atomic(out_dir / "config.json", model.config.to_dict())
    save_tokenizer(tok, out_dir / "tokenizer.json")


def read_safetensors_export(folder: Path) -> tuple[BrainConfig, dict[str, torch.Tensor], Tokenizer]:
    """(brain config, tensors, tokenizer) of a folder written by `export_safetensors`."""
    folder = Path(folder)
    try:
        cfg = config_from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SoulError(f"{folder / 'config.json'} not found") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise SoulError(f"{folder / 'config.json'} is not a babyterm brain config ({e})") from None
    try:
        tensors = load((folder / "model.safetensors").read_bytes())
    except FileNotFoundError:
        raise SoulError(f"{folder / 'model.safetensors'} not found") from None
    except (OSError, SafetensorError, ValueError) as e:
        raise SoulError(f"{folder / 'model.safetensors'} is not a readable safetensors file ({e})") from None
    return cfg, tensors, load_tokenizer(folder / "tokenizer.json")
