"""Emphasis ("juicing"): words marked *like this* in a prompt get extra attention while the baby replies."""

from __future__ import annotations

import math
import re

from tokenizers import Tokenizer

from school.tokenizer import BOS_ID

_MARK = re.compile(r"\*([^*\n]+)\*")


def parse_marks(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Drop the asterisks of *marked* words; return the plain text and the marked character spans."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    at, length = 0, 0
    for m in _MARK.finditer(text):
        before = text[at : m.start()]
        plain.append(before)
        length += len(before)
        spans.append((length, length + len(m.group(1))))
        plain.append(m.group(1))
        length += len(m.group(1))
        at = m.end()
    plain.append(text[at:])
    return "".join(plain), spans


def emphasis_bias(
    tokenizer: Tokenizer, text: str, spans: list[tuple[int, int]], strength: float, bos: bool = False
) -> tuple[list[int], list[float]]:
    """Token ids of `text` and a log-weight per token: log(strength) where it overlaps a marked span.

    A strength of 2 doubles the (unnormalised) attention each marked token receives. With `bos`,
    the ids start with <s> (weight 0), as the baby's training documents do.
    """
    enc = tokenizer.encode(text, add_special_tokens=False)
    boost = math.log(strength) if strength > 0 else 0.0
    bias = [boost if any(s < end and start < e for s, e in spans) else 0.0 for start, end in enc.offsets]
    if bos:
        return [BOS_ID, *enc.ids], [0.0, *bias]
    return list(enc.ids), bias
