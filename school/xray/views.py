"""What an x-ray holds: frozen, JSON-ready views of one forward pass, one dataclass per stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SENTENCES: dict[str, str] = {
    "tokens": "Text is cut into pieces the baby knows, and each piece becomes a number, its id.",
    "embeddings": "Each id picks one row of numbers, its embedding; alike pieces get alike rows.",
    "position": "Order matters, so each place in the text gets its own mark: a rotation, or a learned row.",
    "attention": "Each token asks a question (query); earlier tokens whose keys match lend it their values.",
    "mlp": "A feed-forward layer then works on each token alone, switching on the neurons that fit it.",
    "residual": "Every block adds its findings to a running total, the residual stream, whose size is shown.",
    "window": "This rung reads a fixed number of earlier tokens side by side, and nothing older.",
    "hidden": "The window goes through one layer of tanh neurons, each saying how much it fits (-1 to 1).",
    "neurons": "Each token's blended input lights up neurons; only the ones that fit stay on (GELU).",
    "windows": "Interneurons average the neurons over windows of recent tokens, each of a learned length.",
    "memory": "Memories keep fading traces of the past; a gate decides to lean on memory or on the present.",
    "logits": "At the end, the baby scores every piece it knows; softmax turns the scores into chances.",
    "learning": "Training nudges every layer a little each step: this is how much, relative to its size.",
}
"""One plain sentence per stage, written for a beginner: what it shows and why the model does it."""

STAGES: dict[str, tuple[str, ...]] = {
    "transformer": ("tokens", "embeddings", "position", "attention", "mlp", "residual", "logits", "learning"),
    "attention": ("tokens", "embeddings", "position", "attention", "mlp", "residual", "logits", "learning"),
    "mlp": ("tokens", "embeddings", "window", "hidden", "logits", "learning"),
    "babyllm": ("tokens", "embeddings", "position", "neurons", "windows", "memory", "logits", "learning"),
}
"""The stages each brain's x-ray shows, in the order the numbers flow."""


@dataclass(frozen=True)
class TokenView:
    index: int
    id: int
    piece: str
    """The piece as it reads in text (▁ shown as a space)."""
    bytes: list[int]
    byte_fallback: bool
    """True for a raw-byte piece (<0xNN>): a character the tokenizer never learned as a whole."""


@dataclass(frozen=True)
class Neighbour:
    id: int
    piece: str
    cosine: float


@dataclass(frozen=True)
class EmbeddingView:
    index: int
    values: list[float]
    norm: float
    nearest: list[Neighbour]
    """The five other pieces whose rows point most the same way (cosine similarity)."""


@dataclass(frozen=True)
class PositionView:
    kind: str
    """"rotary" (angles per position and pair), "learned" (a row per position) or "window"."""
    angles: list[list[float]] = field(default_factory=list)
    """rotary: (T, head_size/2) radians each pair is turned by, position * base^(-2j/head_size)."""
    rows: list[list[float]] = field(default_factory=list)
    """learned: the position row added at each place, (T, C)."""
    norms: list[float] = field(default_factory=list)
    """learned: each position row's length."""
    weight: float | None = None
    """babyllm: the share the position gets in the input blend."""


@dataclass(frozen=True)
class HeadView:
    layer: int
    head: int
    scores: list[list[float | None]]
    """Raw q·k/√d, (T, T); None where the causal mask hides a later key (−∞ before softmax)."""
    weights: list[list[float]]
    """softmax of each row: how much each query reads each key; rows sum to 1."""
    value_norm: list[float]
    """Length of the mixed value vector each query takes home."""
    query: list[list[float]] = field(default_factory=list)
    """rotary: each position's query before rotation, (T, head_size)."""
    query_rotated: list[list[float]] = field(default_factory=list)

    def masked(self, query: int, key: int) -> bool:
        return self.scores[query][key] is None


@dataclass(frozen=True)
class MLPView:
    """A feed-forward layer's activations, summarised per position."""

    mean_abs: list[float]
    active: list[float]
    """Fraction of neurons switched on (above 0; for tanh, beyond ±0.5)."""
    top: list[list[int]]
    """The three most active neurons at each position."""
    saturated: list[float] = field(default_factory=list)
    """tanh only: fraction of neurons stuck near ±1, where they barely learn."""


@dataclass(frozen=True)
class LayerView:
    index: int
    heads: list[HeadView]
    mlp: MLPView | None
    residual_norm: list[float]
    """Length of the residual stream at each position after this block."""


@dataclass(frozen=True)
class WindowView:
    """The MLP rung: which tokens each position reads, and how loud each slot is."""

    size: int
    reads: list[list[int]]
    """Per position, the token indices in its window, oldest first (missing ones were padding)."""
    slot_norm: list[list[float]]
    """Per position and window slot, ‖W1_slot · e‖: how much that slot pushes the hidden layer."""


@dataclass(frozen=True)
class BabyView:
    """The babyllm brain's own stages: blend, neurons, window means and memory gates."""

    blend: list[float]
    """Input shares of token, position and pixel."""
    neurons: MLPView
    window_sizes: list[float]
    window_mix: list[float]
    window_norm: list[list[float]]
    """Per window k and position, the length of that window's mean of the neurons, (K, T)."""
    decays: list[list[float]]
    """Per memory layer, the short and the long trace's decay per token."""
    gates: list[list[float]]
    """Per memory layer and position, the gate averaged over channels: 1 leans on memory, 0 on now."""
    memory_norm: list[list[float]]
    """Per memory layer and position, the output's length."""


@dataclass(frozen=True)
class Guess:
    id: int
    piece: str
    prob: float


@dataclass(frozen=True)
class LogitView:
    index: int
    top: list[Guess]
    true_id: int | None
    """The token that really comes next in the text (None at the last position)."""
    true_prob: float | None
    surprise_bits: float | None
    """−log2 of true_prob: 0 when the baby was sure and right, large when surprised."""


@dataclass(frozen=True)
class LearningView:
    step: int | None
    """The logged training step these were measured at (None: nothing recorded yet)."""
    updates: dict[str, float]
    """Per layer, ‖Δw‖/‖w‖ of that step's update."""


@dataclass(frozen=True)
class XRay:
    brain: str
    text: str
    weights: str
    tokens: list[TokenView]
    embeddings: list[EmbeddingView]
    position: PositionView | None
    layers: list[LayerView]
    logits: list[LogitView]
    learning: LearningView
    window: WindowView | None = None
    hidden: MLPView | None = None
    babyllm: BabyView | None = None

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES[self.brain]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain lists, numbers, strings and None; with the stages and their sentences.

        The number lists are shared, not copied (dataclasses.asdict would copy ~10^6 floats one by
        one, at twice the cost of the whole x-ray): treat the result as read-only.
        """
        out = _plain(self)
        out["stages"] = [{"name": s, "sentence": SENTENCES[s]} for s in self.stages]
        return out


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, all the way down; lists of numbers are passed through as they are."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
