"""Tiny real babies for export and adoption tests: born and taught by the tutor, then given bold weights."""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

from school.options import TrainOptions
from school.tutor import Tutor
from soul.paths import BabyPaths

BRAINS = {
    # grouped-query attention (4 query heads share 2 kv heads), as small as a real soul allows
    "transformer": dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=32),
    "babyllm": dict(embed_dim=32, n_neurons=64, max_seq_len=32),
}
FAST = dict(batch_size=4, warmup_steps=2, eval_batches=1, save_every=10_000, save_minutes=60.0)


def make_baby(home: Path, library: Path, name: str, brain: str = "transformer", **brain_extra) -> BabyPaths:
    """A baby with a trained 300-token tokenizer, two training steps, then weights far from init.

    Initial weights are so small (std 0.02) that a wrong permutation would hide under a 1e-4
    tolerance; bold weights make every mistake show in the logits and in greedy text.
    """
    torch.set_num_threads(1)
    options = TrainOptions(
        baby=name, home=str(home), library=str(library), brain=brain, preset="tiny", vocab_size=300, threads=1
    )
    tutor = Tutor(options, syllabus_overrides=FAST, brain_overrides={**BRAINS[brain], **brain_extra})
    tutor.prepare()
    for _ in range(2):
        tutor.train_step()
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    with torch.no_grad():
        for p in tutor.model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            else:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
    tutor.save("manual")
    return tutor.paths
