"""What the scripted trainer says about its replies: per-token confidence and attention, all deterministic."""

from __future__ import annotations

import re
from typing import Any

from school.events import InsightEvent

PROBS = (0.92, 0.45, 0.07, 0.63, 0.81, 0.3)
"""The probability of reply token i is PROBS[i % 6]: bright, middling, doubtful and in between."""
ALTERNATIVES = (" cat", " the", "\n", " [dog]", "ok")
LAYERS, HEADS = 2, 4
WINDOWS = {"sizes": [2.0, 4.5, 9.25], "mix": [0.5, 0.3, 0.2], "gates": [0.41, 0.77], "blend": [0.6, 0.3, 0.1]}
_WORDS = re.compile(r"\s*\*[^*\n]+\*|\s*[^\s*]+|\s+")


def reply_tokens(pieces: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """One token per streamed piece, with the top five choices (the token itself among them)."""
    tokens = []
    for i, piece in enumerate(pieces):
        prob = PROBS[i % len(PROBS)]
        rest = [(1 - prob) * share for share in (0.5, 0.25, 0.12, 0.06)]
        top = sorted(
            [[100 + i, prob, piece], *([200 + j, p, ALTERNATIVES[j]] for j, p in enumerate(rest))],
            key=lambda alt: -alt[1],
        )
        tokens.append(
            {"id": 100 + i, "text": piece, "prob": prob, "margin": top[0][1] - top[1][1], "top": top[:5]}
        )
    return tokens


def prompt_pieces(text: str, strength: float) -> tuple[list[str], list[float]]:
    """The prompt as word pieces (marks dropped) and each piece's emphasis multiplier."""
    pieces, emphasis = [], []
    for m in _WORDS.finditer(text):
        piece = m.group()
        marked = "*" in piece
        pieces.append(piece.replace("*", ""))
        emphasis.append(strength if marked else 1.0)
    return [*pieces, "\n"], [*emphasis, 1.0]


def insight(step: int, command: dict[str, Any], chat: dict[str, Any], pieces: list[str]) -> InsightEvent:
    """What reply token `index` looked at: the prompt and the reply before it.

    Weights are small integers normalised per row, boosted where the prompt was marked; `mean` is the
    average of all rows, as the speaker's is. With `chat["brain"] == "babyllm"`, windows instead.
    """
    index = int(command["index"])
    strength = float(chat.get("emphasis") or 2.0)
    context, emphasis = prompt_pieces(str(chat.get("text", "")), strength)
    context += pieces[:index]
    emphasis += [1.0] * index

    def row(offset: int) -> list[float]:
        raw = [(1 + (j * 7 + offset) % 5) * e for j, e in enumerate(emphasis)]
        return [w / sum(raw) for w in raw]

    if chat.get("brain") == "babyllm":
        return InsightEvent(step, command["id"], index, context, row(index), emphasis, windows=WINDOWS)
    layers = [[row(index + 2 * layer + 3 * head) for head in range(HEADS)] for layer in range(LAYERS)]
    rows = [r for heads in layers for r in heads]
    mean = [sum(col) / len(rows) for col in zip(*rows, strict=True)]
    return InsightEvent(step, command["id"], index, context, mean, emphasis, layers=layers)
