"""Named sizes of each brain. `tiny` is for a laptop CPU, `original` is babyLLM's own scale."""

from __future__ import annotations

from typing import Any

# Shapes only; training settings (batch, lr) live with the tutor's presets.
# Every brain's window (max_seq_len) is the same at each preset, so a race compares them on the
# same validation windows.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": {
        "tiny": dict(window=8, embed_dim=64, hidden_dim=512, max_seq_len=128),
        "small": dict(window=16, embed_dim=128, hidden_dim=1024, max_seq_len=256),
        "original": dict(window=32, embed_dim=256, hidden_dim=4096, max_seq_len=512),
    },
    "attention": {
        "tiny": dict(dim=128, max_seq_len=128),
        "small": dict(dim=256, max_seq_len=256),
        "original": dict(dim=1024, max_seq_len=512),
    },
    "transformer": {
        "tiny": dict(dim=128, n_layers=4, n_heads=4, max_seq_len=128),
        "small": dict(dim=256, n_layers=6, n_heads=8, max_seq_len=256),
        "original": dict(dim=1024, n_layers=8, n_heads=16, max_seq_len=512),
    },
    "babyllm": {
        "tiny": dict(embed_dim=128, n_neurons=512, max_seq_len=128),
        "small": dict(embed_dim=256, n_neurons=2048, max_seq_len=256),
        "original": dict(embed_dim=1024, n_neurons=10000, max_seq_len=512),
    },
}
PRESET_NAMES = ("tiny", "small", "original")


def preset_config(brain: str, preset: str, vocab_size: int, **overrides: Any):
    """The config of `brain` at `preset`, for a tokenizer of `vocab_size`."""
    from brain import config_class

    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESET_NAMES)}")
    cls = config_class(brain)
    return cls(vocab_size=vocab_size, **{**PRESETS[brain][preset], **overrides})
