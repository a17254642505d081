"""Real x-rays for app tests: a tiny seeded brain and a small tokenizer, the same every time."""

from __future__ import annotations

from functools import lru_cache

import torch
from tokenizers import Tokenizer

from brain import build_brain, preset_config
from school.commands import XRayRequest
from school.events import XRayEvent
from school.tokenizer import train_tokenizer
from school.xray import xray

TEXT = "the cat sat on the mat and the dog ate the log; what is a list? a list holds things. " * 20
TINY = {
    "transformer": dict(dim=32, n_layers=2, n_heads=2, max_seq_len=64),
    "babyllm": dict(embed_dim=16, n_neurons=32, max_seq_len=64),
    "attention": dict(dim=32, max_seq_len=64),
    "mlp": dict(window=4, embed_dim=16, hidden_dim=48, max_seq_len=64),
}
LEARNING = {"step": 60, "updates": {"tok_embeddings": 0.0123, "layers.0": 0.0045, "layers.1": 0.0031}}


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    return train_tokenizer([TEXT], vocab_size=300)


@lru_cache(maxsize=4)
def brain(name: str):
    torch.manual_seed(5)
    return build_brain(preset_config(name, "tiny", tokenizer().get_vocab_size(), **TINY[name])).eval()


def xray_event(step: int, command: XRayRequest, name: str) -> XRayEvent:
    torch.set_num_threads(1)
    shot = xray(
        brain(name),
        tokenizer(),
        command.text,
        command.top_k,
        weights=f"live (step {step})",
        learning=LEARNING,
    )
    return XRayEvent(step, command.id, shot.to_dict())
