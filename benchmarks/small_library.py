"""Small libraries as users bring them: best and last held-out bits/byte, and the gap to its own text.

    python benchmarks/small_library.py [--minutes 5] [--which default,notes] [--train-args '--preset tiny']
                                        [--probe-speed 30000]

Each run is `babyterm train --minutes M` in a fresh home, in its own process, exactly as a user
would run it (the recipe sizes the baby). The figures are babyterm's own evals from the run log:
held-out bits/byte (whole held-out documents of a folder, or each document's contiguous tail) and,
in the same pass and without dropout, bits/byte on fixed windows of its own training text. The gap
between the two is what it has learned by heart.

- default: Python's built-in docs (pydoc_data.topics), what `babyterm` learns with no --library.
- notes: a folder of ~200 KB of mixed notes made here from public-domain text: short scenes of
  tinyshakespeare (shared/data, beside the project) cut into dated "diary" files, and a few of
  Python's doc topics as "work notes", 40 files in all.
- stdlib: ~10 MB of the Python standard library's own modules (code and docstrings, every install
  has them; tests left out), the top of the size range the recipe is made for. No public-domain
  prose that large is at hand, so this is the 10 MB figure, measured on code.

Besides the scores it prints what came before training (the probe, reading, the tokenizer,
encoding), which `--minutes` does not count.

Run it alone: a second busy process on 2 cores slows torch several times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import probe_pin  # noqa: E402

SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def make_notes(folder: Path, target_bytes: int = 200_000) -> int:
    """~target_bytes of mixed notes in 40 files: 30 diary entries of scenes, 10 work notes."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True)
    plays = SHAKESPEARE.read_text(encoding="utf-8")
    per_diary = int(target_bytes * 0.75 / 30)
    for i in range(30):
        start = plays.find("\n\n", (i * 997_331) % (len(plays) - per_diary)) + 2  # spread through the text
        body = plays[start : start + per_diary]
        (folder / f"diary-2026-{1 + i // 28:02d}-{1 + i % 28:02d}.txt").write_text(
            f"Dear diary, day {i + 1}.\n\n{body}\n", encoding="utf-8"
        )
    names = sorted(n for n in topics if len(topics[n]) > 2000)
    per_note = int(target_bytes * 0.25 / 10)
    for name in names[:: max(1, len(names) // 10)][:10]:
        (folder / f"work-{name}.md").write_text(f"# {name}\n\n{topics[name][:per_note]}\n", encoding="utf-8")
    return sum(p.stat().st_size for p in folder.iterdir())


def make_stdlib(folder: Path, target_bytes: int = 10_000_000) -> int:
    """The standard library's modules, in path order, until ~target_bytes (tests left out)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    folder.mkdir(parents=True)
    total = 0
    for path in sorted(root.rglob("*.py")):
        if total >= target_bytes:
            break
        parts = path.relative_to(root).parts
        if any(p in ("test", "tests", "site-packages", "idle_test") for p in parts):
            continue
        shutil.copyfile(path, folder / "__".join(parts))
        total += path.stat().st_size
    return total


def run(library: Path | None, home: Path, minutes: float, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "babyterm",
        "train",
        "--home",
        str(home),
        "--baby",
        "b",
        "--minutes",
        str(minutes),
    ]
    if library is not None:
        cmd += ["--library", str(library)]
    start = time.monotonic()
    done = subprocess.run(cmd + extra, cwd=ROOT, capture_output=True, text=True)
    wall_s = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"babyterm train failed ({done.returncode}):\n{done.stderr[-2000:]}")
    evals = []
    for log in sorted((home / "babies" / "b" / "logs").glob("*.jsonl")):
        for line in log.read_text().splitlines():
            if line.strip() and (r := json.loads(line)).get("kind") == "eval":
                evals.append(r)
    config = json.loads((home / "babies" / "b" / "config.json").read_text())
    # what came before training: each stage's last progress line ("encoding: 100% ... in 0.1s")
    before = [line.strip() for line in done.stdout.splitlines() if "100%" in line and "step" not in line]
    return {"evals": evals, "brain": config.get("brain", {}), "before": before, "wall_s": wall_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--which", default="default,notes")
    probe_pin.add_option(p)
    p.add_argument("--train-args", default="", help="more `babyterm train` options, e.g. '--dropout 0.2'")
    args = p.parse_args(argv)
    probe_pin.apply(args)
    with tempfile.TemporaryDirectory() as tmp:
        for which in args.which.split(","):
            library = None
            if which == "notes":
                library = Path(tmp) / "notes"
                size = make_notes(library)
                print(f"notes: {size:,} bytes in {len(list(library.iterdir()))} files", flush=True)
            elif which == "stdlib":
                library = Path(tmp) / "stdlib"
                size = make_stdlib(library)
                print(f"stdlib: {size:,} bytes in {len(list(library.iterdir()))} files", flush=True)
            r = run(library, Path(tmp) / f"home-{which}", args.minutes, args.train_args.split())
            print(f"{which}: before training: {'; '.join(r['before'])}; the whole run {r['wall_s']:.0f} s")
            evals = r["evals"]
            if not evals:
                print(f"{which}: no evaluation in {args.minutes} minutes")
                continue
            best = min(evals, key=lambda e: e["val_bpb"])
            last = evals[-1]
            trail = ", ".join(f"{e['step']}:{e['val_bpb']:.3f}/{e.get('train_bpb') or 0:.3f}" for e in evals)
            b = r["brain"]
            print(f"{which}: brain {b.get('n_layers')}x{b.get('dim')}, context {b.get('max_seq_len')}, "
                  f"dropout {b.get('dropout')}; evals (step: held-out/own) {trail}")  # fmt: skip
            gap = last["val_bpb"] - (last.get("train_bpb") or float("nan"))
            print(
                f"{which}: best {best['val_bpb']:.3f} (step {best['step']}), last {last['val_bpb']:.3f} "
                f"(step {last['step']}; {last['val_bpb'] - best['val_bpb']:+.3f} from best), "
                f"own text {last.get('train_bpb') or float('nan'):.3f}, gap {gap:.3f} (target <= 0.3)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
