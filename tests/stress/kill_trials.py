"""Kill -9 a training baby at random moments, relaunch it, and check that nothing was lost.

    python tests/stress/kill_trials.py --library tests/data/tinyshakespeare-start.txt --trials 200

Prints one JSON line: trials, clean resumes, corrupted souls, and the worst loss of work. The
normal test suite runs 20 trials (tests/test_faults_training.py); this script runs as many as
asked. Each trial forks a child from one process that has imported torch but run nothing yet
(so trials start in milliseconds), lets it train with frequent saves, SIGKILLs it after a random
delay (during start-up, a step, a log line or a checkpoint write), then verifies the soul.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from school.counsellor import read_log  # noqa: E402
from school.options import TrainOptions  # noqa: E402
from soul.checkpoint import load_latest  # noqa: E402
from soul.paths import baby_paths  # noqa: E402

BRAIN = dict(dim=32, n_layers=2, n_heads=2, max_seq_len=32)
SYLLABUS = dict(batch_size=4, save_every=3, save_minutes=60.0, log_every=2, eval_every=50, eval_batches=1)


def train_child(options: TrainOptions, progress: Path, steps: int | None = None) -> None:
    """In the forked child: train for ever, writing the step of each finished save to `progress`."""
    import torch

    from school.events import SaveEvent
    from school.tutor import Tutor

    torch.set_num_threads(1)
    options.steps = steps
    tutor = Tutor(options, syllabus_overrides=SYLLABUS, brain_overrides=BRAIN)
    out = open(progress, "a", buffering=1)  # noqa: SIM115 (the child dies holding it)

    def note(e: object) -> None:
        if isinstance(e, SaveEvent) and e.reason not in ("milestone", "best"):  # not checkpoints
            out.write(f"{e.step}\n")

    tutor.subscribe(note)
    tutor.run()


def check(options: TrainOptions, progress: Path) -> dict:
    """What a relaunch finds: a valid checkpoint at least as new as the last finished save."""
    paths = baby_paths(options.baby, options.home)
    saved = [int(s) for s in progress.read_text().split()] if progress.exists() else []
    try:
        found = load_latest(paths.checkpoints)
    except Exception as e:  # a soul we cannot load is a corrupted soul
        return {"ok": False, "corrupt": True, "why": f"{type(e).__name__}: {e}"}
    if found is None:
        return {"ok": not saved, "corrupt": bool(saved), "why": "no checkpoint", "step": 0, "lost": 0}
    adam_steps = {int(s["step"]) for s in found.optim.get("state", {}).values()}
    consistent = found.state["step"] == found.step and adam_steps <= {found.step}
    for log in paths.logs.glob("*.jsonl"):
        for _ in read_log(log):  # logs may end in a cut line; reading them must not fail
            pass
    last = max(saved, default=0)
    ok = consistent and found.step >= last and not found.warnings
    return {
        "ok": ok,
        "corrupt": not consistent,
        "step": found.step,
        "lost": max(0, last - found.step),
        "why": "" if ok else f"step {found.step}, last save {last}, warnings {found.warnings}",
    }


def run_trials(library: str, trials: int, seed: int, max_delay: float) -> dict:
    import torch

    # The parent reads checkpoints between trials; with one thread torch starts no OpenMP pool,
    # which a forked child could otherwise inherit in a locked state and hang on.
    torch.set_num_threads(1)
    import torch._dynamo  # AdamW imports it: 2 s each child would spend before training

    rng = random.Random(seed)
    home = tempfile.mkdtemp(prefix="babyterm-kill-")
    options = TrainOptions(baby="survivor", home=home, library=library, vocab_size=300, threads=1)
    progress = Path(home) / "saves.txt"
    results = []
    birth = os.fork()  # the baby is born (tokenizer, corpus, first save) before the killing starts
    if birth == 0:
        try:
            train_child(options, progress, steps=3)
        finally:
            os._exit(0)
    os.waitpid(birth, 0)
    for _ in range(trials):
        pid = os.fork()
        if pid == 0:  # the child trains until it is killed
            try:
                train_child(options, progress)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.05, max_delay))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        results.append(check(options, progress))
    summary = {
        "trials": trials,
        "clean_resumes": sum(r["ok"] for r in results),
        "corrupted_souls": sum(r.get("corrupt", False) for r in results),
        "max_steps_lost": max((r.get("lost", 0) for r in results), default=0),
        "final_step": results[-1].get("step", 0) if results else 0,
        "failures": [r["why"] for r in results if not r["ok"]][:5],
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", required=True)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-delay", type=float, default=1.5, help="longest a child lives before the kill (s)")
    args = p.parse_args(argv)
    summary = run_trials(str(Path(args.library).resolve()), args.trials, args.seed, args.max_delay)
    print(json.dumps(summary))
    return 0 if summary["clean_resumes"] == summary["trials"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
