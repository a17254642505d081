"""The x-ray: one forward pass of a baby's brain on a text, every stage's real numbers kept.

`xray(model, tokenizer, text)` returns an XRay (school.xray.views): tokens, embeddings, position,
each layer's heads and MLP, the residual stream, the logits and the last recorded update sizes.
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import Tokenizer

from brain import Brain
from school.tokenizer import encode_prompt
from school.xray import rungs
from school.xray.common import bytes_table, embedding_views, logit_views, token_views
from school.xray.views import SENTENCES, STAGES, LearningView, XRay

__all__ = ["SENTENCES", "STAGES", "XRay", "encode_for_xray", "xray"]


def encode_for_xray(tokenizer: Tokenizer, text: str, max_len: int, bos: bool = True) -> list[int]:
    """The ids the x-ray reads: as a training document begins (<s> first), the last `max_len` kept."""
    return encode_prompt(tokenizer, text, bos)[-max_len:]


def xray(
    model: Brain,
    tokenizer: Tokenizer,
    text: str,
    top_k: int = 5,
    *,
    weights: str = "live",
    learning: dict[str, Any] | None = None,
    pixel: torch.Tensor | None = None,
    bos: bool = True,
    ids: list[int] | None = None,
) -> XRay:
    """X-ray `text` (or the given `ids`) through `model`.

    Args:
        learning: the tutor's last recorded update sizes, {"step": N, "updates": {layer: ratio}}.
        pixel: the colour the baby feels (None: grey, as exports and `babyterm chat` see it).
    """
    if ids is None:
        ids = encode_for_xray(tokenizer, text, model.config.max_seq_len, bos)
    if not ids:
        raise ValueError("nothing to x-ray: the text has no tokens")
    was_training = model.training
    model.eval()
    try:
        x = torch.tensor([ids], dtype=torch.long, device=model.device)
        brain = model.config.brain
        layers, window, hidden, baby = [], None, None, None
        if brain == "transformer":
            position, layers, logits = rungs.transformer(model, x, pixel)
        elif brain == "attention":
            position, layers, logits = rungs.attention(model, x, pixel)
        elif brain == "mlp":
            position = None
            window, hidden, logits = rungs.mlp(model, x, pixel)
        elif brain == "babyllm":
            position, baby, logits, _, _ = rungs.babyllm(model, x, pixel)
        else:
            raise ValueError(f"no x-ray for the {brain!r} brain")
    finally:
        model.train(was_training)
    rec = learning or {}
    return XRay(
        brain=brain,
        text=text,
        weights=weights,
        tokens=token_views(tokenizer, ids, bytes_table(tokenizer)),
        embeddings=embedding_views(tokenizer, ids, model.tok_embeddings.weight),
        position=position,
        layers=layers,
        logits=logit_views(tokenizer, ids, logits, top_k),
        learning=LearningView(rec.get("step"), dict(rec.get("updates", {}))),
        window=window,
        hidden=hidden,
        babyllm=baby,
    )
