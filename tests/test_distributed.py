"""Training under torchrun: two CPU ranks (gloo) learn one baby; rank 0 alone writes the soul."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from soul.checkpoint import load_latest
from soul.jsonl import read_jsonl

ROOT = Path(__file__).resolve().parents[1]

RANK_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, sys
    sys.path.insert(0, {root!r})
    import torch
    import school.syllabus
    from tests.test_tutor import make_tutor

    school.syllabus.EVAL_SHARE = {eval_share}

    library = __import__("pathlib").Path({library!r})
    tutor = make_tutor(library, log_every=5, save_every=10, eval_every={eval_every})
    tutor.options.home = {home!r}
    tutor.options.steps, tutor.options.minutes = {steps}, {minutes}
    tutor.run()
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in tutor.model.parameters()))
    syl = tutor.syllabus
    out = {{"rank": int(os.environ["RANK"]), "step": tutor.step, "sha": digest.hexdigest(),
           "decay_steps": syl.decay_steps, "eval_every": syl.eval_every}}
    with open(os.path.join({out!r}, f"rank{{out['rank']}}.json"), "w") as f:
        json.dump(out, f)
    """
)


def torchrun(
    tmp_path: Path,
    library: Path,
    home: Path,
    steps: int | None,
    minutes: float | None = None,
    eval_every: int = 20,
    eval_share: float = 0.05,
) -> list[dict]:
    out = tmp_path / f"out-{steps}-{minutes}"
    out.mkdir()
    script = tmp_path / f"rank-{steps}-{minutes}.py"
    fields = dict(
        library=str(library),
        home=str(home),
        steps=steps,
        minutes=minutes,
        eval_every=eval_every,
        eval_share=eval_share,
    )
    script.write_text(RANK_SCRIPT.format(root=str(ROOT), out=str(out), **fields))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_ranks_train_one_baby_and_resume(tmp_path: Path, small_library: Path) -> None:
    home = tmp_path / "home"
    ranks = torchrun(tmp_path, small_library, home, steps=30)
    assert [r["step"] for r in ranks] == [30, 30]
    assert ranks[0]["sha"] == ranks[1]["sha"]  # DDP kept the ranks identical

    paths = home / "babies" / "baby"
    assert load_latest(paths / "checkpoints").step == 30
    logs = list(paths.glob("logs/*.jsonl"))
    assert len(logs) == 1  # rank 0 alone writes the log
    losses = [r["loss"] for r in read_jsonl(logs[0]) if r["kind"] == "step"]
    assert losses[-1] < losses[0]

    # resumed for a few seconds: each rank times its own steps; fitted to the lead's pace they keep
    # one learning rate, one cadence of evaluations and so one set of weights. A tiny library's
    # evaluation can cost less than a quarter of a two-rank step, so the share is made small enough
    # that any evaluation spaces the cadence: the spacing then rides on the timings each rank agrees
    again = torchrun(tmp_path, small_library, home, steps=None, minutes=0.06, eval_every=5, eval_share=1e-3)
    assert again[0]["step"] == again[1]["step"] > 30 + 20 and again[0]["sha"] == again[1]["sha"]
    assert again[0]["decay_steps"] == again[1]["decay_steps"] != 6000  # fitted, alike
    assert again[0]["eval_every"] == again[1]["eval_every"] > 5  # spaced to the evaluations' cost
    assert load_latest(paths / "checkpoints").step == again[0]["step"]


def test_checkpoint_holds_what_rank_zero_holds(tmp_path: Path, small_library: Path) -> None:
    """The saved weights hash to what both ranks held at the end."""
    home = tmp_path / "home"
    ranks = torchrun(tmp_path, small_library, home, steps=10)
    found = load_latest(home / "babies" / "baby" / "checkpoints")
    from tests.test_tutor import make_tutor

    tutor = make_tutor(small_library)
    tutor.options.home = str(home)
    tutor.prepare()  # resumes from the checkpoint rank 0 wrote
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in tutor.model.parameters()))
    assert tutor.step == found.step == 10
    assert digest.hexdigest() == ranks[0]["sha"] == ranks[1]["sha"]
    assert torch.isfinite(next(tutor.model.parameters())).all()
