"""The app while it trains: its training speed against headless, key latency, and what chat costs.

    python benchmarks/app_bench.py --library ../shared/data/tinyshakespeare.txt --seconds 60

1. Headless: `babyterm train --minutes M` on a fresh baby; then the app on the same baby for the
   same time, in a real pseudo-terminal (120x36). Speed is the median tokens/s of the logged
   steps in each run's JSONL log (the first few steps skipped).
2. Key latency, measured during the app run: with the chat focused, a rare character is typed
   every ~300 ms; latency is the time until its bytes appear in the terminal output.
3. Chat, in a headless tutor training on the main thread as the app's trainer process does (a
   side thread only sends the messages): time to the first reply token (answered mid-step, after
   the forward or backward under way), the reply's tokens/s after it, and training tokens/s with a
   chat message every 5 s against without. (On a side thread instead, a one-row matmul runs
   ~12x slower after training's large ones on this CPU's OpenMP pool, which is not the app.)
Run it on a quiet machine: one other busy process slows torch several times.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "Ж".encode()  # never in a training line, so its echo is unmistakable


def run_speeds(logs: Path, since: float = 0.0, until: float = float("inf")) -> list[float]:
    """tokens/s of the newest run's logged steps (after the first few), between two wall times."""
    newest = max(logs.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    records = [json.loads(line) for line in newest.read_text().splitlines() if '"kind": "step"' in line]
    return [r["tokens_per_s"] for r in records[3:] if since <= r["time"] < until]


def headless(home: str, library: str, seconds: float, threads: int | None) -> float:
    import torch

    from school.compiler import compile_wanted

    # the app's run is open-ended, so auto compiles it where it can; a short --minutes would not
    like_the_app = "on" if compile_wanted("auto", torch.device("cpu")) else "off"
    cmd = [
        sys.executable,
        "-m",
        "babyterm",
        "train",
        "--home",
        home,
        "--library",
        library,
        "--minutes",
        str(seconds / 60),
        "--compile",
        like_the_app,
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    subprocess.run(cmd, check=True, capture_output=True)
    return statistics.median(run_speeds(Path(home) / "babies" / "baby" / "logs"))


def in_app(home: str, seconds: float, threads: int | None) -> tuple[float, float, list[float]]:
    """Run the app in a pty on the baby: `seconds` untouched, then as long typing into the chat.

    Returns the median tokens/s untouched, the same while typing, and the key latencies (ms).
    """
    argv = [sys.executable, "-m", "babyterm", "--home", home] + (
        ["--threads", str(threads)] if threads else []
    )
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="36")
        os.execv(sys.executable, argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))

    def drain(until: float, wanted: bytes | None = None) -> bool:
        while time.monotonic() < until:
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return False
                if wanted and wanted in data:
                    return True
        return False

    latencies: list[float] = []
    start = time.monotonic()
    drain(start + 15 + seconds)  # start-up, then training with nobody touching the keys
    typing_from = time.time()
    os.write(fd, b"c")  # focus the chat
    drain(time.monotonic() + 0.5)
    while time.monotonic() - start < 2 * seconds + 15:
        t0 = time.monotonic()
        os.write(fd, KEY)
        if drain(t0 + 2.0, KEY):
            latencies.append((time.monotonic() - t0) * 1000)
        drain(time.monotonic() + 0.3)
        if len(latencies) % 20 == 19:
            os.write(fd, b"\x15")  # ctrl+u clears the input now and then
            drain(time.monotonic() + 0.3)
    os.write(fd, b"\x1b")  # leave the chat, then quit (saves first)
    drain(time.monotonic() + 0.3)
    os.write(fd, b"q")
    drain(time.monotonic() + 20)
    os.waitpid(pid, 0)
    logs = Path(home) / "babies" / "baby" / "logs"
    quiet, typing = run_speeds(logs, until=typing_from), run_speeds(logs, since=typing_from)
    return statistics.median(quiet), statistics.median(typing), latencies


def chat_cost(home: str, library: str, seconds: float, threads: int | None) -> dict[str, float]:
    from school.commands import Chat, Stop
    from school.events import ChatEvent, StepEvent
    from school.options import TrainOptions
    from school.tutor import Tutor

    tutor = Tutor(TrainOptions(home=home, baby="chatty", library=library, threads=threads))
    tutor.prepare()
    sent: dict[str, float] = {}
    first: dict[str, float] = {}
    ttft: list[float] = []
    rates: list[float] = []
    speeds: list[tuple[float, float]] = []
    quiet_end = float("inf")

    def on(e: object) -> None:
        now = time.monotonic()
        if isinstance(e, ChatEvent) and e.reply_id in sent:
            if not e.final and e.reply_id not in first:
                first[e.reply_id] = now
                ttft.append((now - sent[e.reply_id]) * 1000)
            if e.final and len(e.tokens) > 1 and e.reply_id in first:
                rates.append((len(e.tokens) - 1) / max(1e-9, now - first[e.reply_id]))
        if isinstance(e, StepEvent):
            speeds.append((now, e.tokens_per_s))

    def chat() -> None:
        nonlocal quiet_end
        deadline = time.monotonic() + 300
        while not speeds and time.monotonic() < deadline:  # the first step may compile: wait it out
            time.sleep(0.2)
        time.sleep(seconds / 2)
        quiet_end = time.monotonic()
        n = 0
        while time.monotonic() - quiet_end < seconds / 2:
            sent[f"r{n}"] = time.monotonic()
            tutor.send(Chat(id=f"r{n}", text="Tell me about the king", max_tokens=60))
            n += 1
            time.sleep(5)
        tutor.send(Stop())

    tutor.subscribe(on)
    sender = threading.Thread(target=chat)
    sender.start()
    tutor.run()  # on the main thread, as babyterm/trainer_process.py runs it
    sender.join()
    quiet = [s for t, s in speeds[3:] if t < quiet_end]
    chatty = [s for t, s in speeds if t >= quiet_end]
    return {
        "ttft_ms_median": statistics.median(ttft),
        "reply_tokens_per_s": statistics.median(rates),
        "train_tok_s_quiet": statistics.median(quiet),
        "train_tok_s_chatting": statistics.median(chatty),
        "replies": len(rates),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    library = str(Path(args.library).resolve())
    with tempfile.TemporaryDirectory() as home:
        speed_headless = headless(home, library, args.seconds, args.threads)
        speed_app, speed_typing, lat = in_app(home, args.seconds, args.threads)
        chat = chat_cost(home, library, args.seconds, args.threads)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    print(
        f"training: headless {speed_headless:,.0f} tok/s, in the app {speed_app:,.0f} tok/s "
        f"({100 * speed_app / speed_headless:.0f}% of headless); while typing a key every 0.3 s "
        f"{speed_typing:,.0f} tok/s ({100 * speed_typing / speed_headless:.0f}%)"
    )
    print(f"key -> screen while training: p50 {pct(0.5):.0f} ms, p95 {pct(0.95):.0f} ms over {len(lat)} keys")
    print(
        f"chat while training: first token {chat['ttft_ms_median']:.0f} ms, then "
        f"{chat['reply_tokens_per_s']:.0f} tokens/s, median of {chat['replies']} replies; "
        f"training {chat['train_tok_s_chatting']:,.0f} tok/s with "
        f"a chat every 5 s vs {chat['train_tok_s_quiet']:,.0f} without"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
