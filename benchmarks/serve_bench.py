"""`babyterm train --serve` under load: training speed with 20 streaming clients against without,
and the first streamed token of a lone request.

    python benchmarks/serve_bench.py --library tests/data/tinyshakespeare-start.txt --seconds 20

A fresh baby trains in this process with the server beside it (as `train --serve` runs). The
clients live in a child process (so their own work is not charged to the trainer's GIL):
1. Without load: training tokens/s over `--seconds` with the server idle, before and after (2).
2. Load: 20 concurrent streaming chat requests (OpenAI face, SSE); all must complete; training
   tokens/s over the time they take. Target: at least 80% of (1).
3. A lone streaming request on an idle queue, `--lone` times: time to its first content chunk
   (median and worst). Target: under 100 ms on a 2-core CPU.
Run it on a quiet machine: another busy process slows torch several times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLIENTS = 20
BODY = {"model": "baby", "messages": [{"role": "user", "content": "Hello there"}], "stream": True}


async def _stream(client, url: str, max_tokens: int) -> tuple[float, int]:
    """(seconds to the first content chunk, content chunks, or -1 if the stream never said [DONE])."""
    start, first, chunks, done = time.perf_counter(), None, 0, False
    async with client.stream(
        "POST", f"{url}/v1/chat/completions", json={**BODY, "max_tokens": max_tokens}
    ) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            done = done or line == "data: [DONE]"
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            if delta.get("content"):
                chunks += 1
                first = first if first is not None else time.perf_counter() - start
    return (first if first is not None else float("nan")), chunks if done else -1


async def _clients(url: str, n: int, max_tokens: int) -> list[tuple[float, int]]:
    import httpx

    async with httpx.AsyncClient(timeout=600) as client:
        return await asyncio.gather(*(_stream(client, url, max_tokens) for _ in range(n)))


def client_main(url: str, n: int, max_tokens: int, lone: int) -> None:
    """The child: n concurrent streams, then `lone` single ones; prints JSON lines."""
    if n:
        t0 = time.perf_counter()
        results = asyncio.run(_clients(url, n, max_tokens))
        print(json.dumps({"load_s": time.perf_counter() - t0, "chunks": [c for _, c in results]}), flush=True)
    firsts = []
    for _ in range(lone):
        time.sleep(0.5)
        firsts.append(asyncio.run(_clients(url, 1, 8))[0][0])
    firsts = [f for f in firsts if f == f] or [float("nan")]  # a reply with no words has no first one
    print(json.dumps({"first_token_s": firsts}), flush=True)


def serve_alone(options, lone: int) -> list[float]:
    """First-token latencies of lone requests to `babyterm serve` (an observer) on the saved baby."""
    from babyterm.server.serve import ServerThread
    from school.observer import Observer

    observer = Observer(options)
    alive = threading.Event()
    alive.set()
    thread = threading.Thread(target=observer.run, args=(alive.is_set,), daemon=True)
    thread.start()
    server = ServerThread(observer, "baby", port=0)
    server.start()
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--client", server.url, "--clients", "0", "--lone", str(lone)],
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout
    finally:
        alive.clear()
        thread.join(10)
        server.stop()
    return json.loads(out.splitlines()[-1])["first_token_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--library", default=str(ROOT / "tests/data/tinyshakespeare-start.txt"))
    p.add_argument("--seconds", type=float, default=20.0, help="the window without load")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--max-tokens", type=int, default=120, help="per streamed reply")
    p.add_argument("--lone", type=int, default=9, help="lone requests for the first-token latency")
    p.add_argument("--client", default=None, help=argparse.SUPPRESS)  # the child's mode: the server's URL
    p.add_argument("--clients", type=int, default=CLIENTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        return client_main(args.client, args.clients, args.max_tokens, args.lone)

    import torch

    from babyterm.server.serve import ServerThread
    from babyterm.serving import LIVE_DUTY
    from school.options import TrainOptions
    from school.tutor import Tutor

    torch.set_num_threads(args.threads)
    home = tempfile.mkdtemp(prefix="serve-bench-")
    options = TrainOptions(baby="baby", home=home, library=args.library, threads=args.threads)
    tutor = Tutor(options)
    alive = threading.Event()
    alive.set()
    trainer = threading.Thread(target=tutor.run, args=(alive.is_set,), daemon=True)
    trainer.start()
    while tutor.step < 60:  # born, past the warm-up, and saying more than a blank line
        time.sleep(0.1)
    server = ServerThread(tutor, "baby", port=0, duty=LIVE_DUTY)
    server.start()

    def speed(seconds: float | None = None, until: threading.Event | None = None) -> tuple[float, float]:
        """Training tokens/s over `seconds`, or until `until` is set."""
        tokens, t0 = tutor.tokens_seen, time.perf_counter()
        while (seconds is not None and time.perf_counter() - t0 < seconds) or (
            until is not None and not until.wait(0)
        ):
            time.sleep(0.05)
        dt = time.perf_counter() - t0
        return (tutor.tokens_seen - tokens) / dt, dt

    quiet, _ = speed(args.seconds)
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--client",
            server.url,
            "--max-tokens",
            str(args.max_tokens),
            "--lone",
            str(args.lone),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[dict] = []
    loaded_done = threading.Event()  # the 20 streams are over

    def read() -> None:
        for line in child.stdout:
            lines.append(json.loads(line))
            loaded_done.set()
        loaded_done.set()  # the child died: stop measuring all the same

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    loaded, load_s = speed(until=loaded_done)
    child.wait(600)
    reader.join(5)
    after, _ = speed(args.seconds)  # quiet again: the machine's own drift shows in the two quiet windows
    alive.clear()
    trainer.join(60)
    server.stop()
    served_firsts = serve_alone(options, args.lone)
    load = next(line for line in lines if "chunks" in line)
    firsts = next(line for line in lines if "first_token_s" in line)["first_token_s"]
    chunks = load["chunks"]
    done = sum(c >= 0 for c in chunks)
    record = tutor.room.record
    median, worst = statistics.median(firsts) * 1000, max(firsts) * 1000
    s_median, s_worst = statistics.median(served_firsts) * 1000, max(served_firsts) * 1000
    print(f"brain {record.brain_name} {record.preset}, {args.threads} torch threads, duty {LIVE_DUTY}")
    print(
        f"training without load     {quiet:9,.0f} tok/s before, {after:,.0f} after "
        f"({args.seconds:.0f} s each)"
    )
    quiet = (quiet + after) / 2
    print(
        f"training under 20 clients {loaded:9,.0f} tok/s  ({load_s:.1f} s)  "
        f"= {loaded / quiet:.0%} of quiet (target >= 80%)"
    )
    print(
        f"streams complete          {done}/{CLIENTS}  "
        f"(content chunks per stream: {min(chunks)}-{max(chunks)})"
    )
    print(
        f"first token, lone request while training: median {median:.0f} ms, worst {worst:.0f} ms "
        f"over {len(firsts)} (it waits for the forward or backward under way)"
    )
    print(
        f"first token, lone request to `babyterm serve`: median {s_median:.0f} ms, worst {s_worst:.0f} ms "
        f"over {len(served_firsts)} (target < 100 ms)"
    )


if __name__ == "__main__":
    main()
