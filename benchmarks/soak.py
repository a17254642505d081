"""Soak: train the tiny preset headless for a long time and report memory (RSS) and log size over time.

    python benchmarks/soak.py --minutes 60 --library ../shared/data/tinyshakespeare.txt

Healthy means: RSS flat after the first minutes (no growth from events, logs, scribe or chat),
and the run log growing by a bounded amount per step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from school.commands import Chat  # noqa: E402
from school.options import TrainOptions  # noqa: E402
from school.tutor import Tutor  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--chat-every", type=float, default=30.0, help="a chat message this often (0: none)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        options = TrainOptions(home=home, library=str(Path(args.library).resolve()), minutes=args.minutes)
        tutor = Tutor(options)
        thread = threading.Thread(target=tutor.run)
        thread.start()
        start, samples, n = time.monotonic(), [], 0
        while thread.is_alive():
            time.sleep(min(args.every, args.chat_every or args.every))
            if args.chat_every:
                tutor.send(Chat(id=f"soak{n}", text="How are you?", max_tokens=40))
                n += 1
            if not samples or time.monotonic() - start - samples[-1][0] >= args.every:
                logs = sum(f.stat().st_size for f in Path(home).rglob("logs/*.jsonl"))
                samples.append((time.monotonic() - start, tutor.step, rss_mb(), logs / 1e6))
                t, step, rss, log_mb = samples[-1]
                print(
                    f"t={t / 60:6.1f} min  step {step:7d}  RSS {rss:7.1f} MB  logs {log_mb:6.2f} MB",
                    flush=True,
                )
        thread.join()
    settled = [s for s in samples if s[0] >= 300] or samples
    growth = settled[-1][2] - settled[0][2]
    print(
        f"soak: {args.minutes:.0f} min, {samples[-1][1]} steps, "
        f"RSS {settled[0][2]:.0f} -> {settled[-1][2]:.0f} MB after the first 5 minutes ({growth:+.0f} MB), "
        f"logs {samples[-1][3]:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
