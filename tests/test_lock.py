"""One baby, one trainer: racing processes, the holder named in the refusal, stale and killed holders."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from soul import lock as lock_module
from soul.lock import BabyLock, holder
from soul.paths import BabyPaths, SoulError

# A contender: says "ready", waits for the go file, tries the lock, says "won" (then holds it for
# argv[3] seconds) or "lost <message>".
CONTENDER = textwrap.dedent(
    """
    import pathlib, sys, time
    from soul.lock import BabyLock
    from soul.paths import BabyPaths, SoulError
    paths = BabyPaths(pathlib.Path(sys.argv[1]), "baby")
    go = pathlib.Path(sys.argv[2])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    try:
        BabyLock(paths).acquire("babyterm train")
    except SoulError as e:
        print("lost", e, flush=True)
        sys.exit(3)
    print("won", flush=True)
    time.sleep(float(sys.argv[3]))
    """
)


def contender(home: Path, go: Path, hold_s: float = 30.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CONTENDER, str(home), str(go), str(hold_s)],
        stdout=subprocess.PIPE,
        text=True,
    )


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def plant(paths: BabyPaths, pid: int, host: str | None = None) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": "then", "command": "old run"}
    paths.lock.write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def paths(tmp_path: Path) -> BabyPaths:
    return BabyPaths(tmp_path / "home", "baby")


@pytest.fixture(params=["flock", "lock file"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every in-process test runs with flock and with the O_EXCL lock file used where flock is not."""
    if request.param == "lock file":
        monkeypatch.setattr(lock_module, "fcntl", None)
    return request.param


def test_racing_processes_exactly_one_wins(paths: BabyPaths, tmp_path: Path) -> None:
    for round_ in range(3):
        go = tmp_path / f"go-{round_}"
        procs = [contender(paths.home, go) for _ in range(3)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        results = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
        winners = [p for p, r in zip(procs, results, strict=True) if r == "won"]
        assert len(winners) == 1, results
        winner = winners[0]
        for p, r in zip(procs, results, strict=True):
            if p is not winner:
                assert p.wait(timeout=30) == 3
                assert f"process {winner.pid} " in r and "stop it first" in r
        assert holder(paths)["pid"] == winner.pid
        winner.kill()
        winner.wait(timeout=30)
        winner.stdout.close()
        for p in procs:
            if p.stdout is not None:
                p.stdout.close()


def test_a_second_trainer_is_told_who_holds_the_baby(paths: BabyPaths, tmp_path: Path) -> None:
    with BabyLock(paths).hold("babyterm train"):
        go = tmp_path / "go"
        go.touch()
        p = contender(paths.home, go, hold_s=0)
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 3
        line = out.splitlines()[-1]
        assert line.startswith(f"lost baby 'baby' is already training in process {os.getpid()} (started ")
        assert "babyterm train); stop it first" in line
        with pytest.raises(SoulError, match=rf"process {os.getpid()} "):
            BabyLock(paths).acquire("babyterm")  # the same process, a second lock: refused too
    p = contender(paths.home, go, hold_s=0)  # released: the next one wins
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and "won" in out


def test_lock_dies_with_a_killed_holder(paths: BabyPaths, tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()
    p = contender(paths.home, go)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready" and p.stdout.readline().strip() == "won"
    assert holder(paths)["pid"] == p.pid
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    assert json.loads(paths.lock.read_text())["pid"] == p.pid  # the record outlives its holder
    notes: list[str] = []
    lock = BabyLock(paths, notes.append)
    lock.acquire("babyterm train")
    assert len(notes) == 1 and notes[0].startswith(f"took over the lock of process {p.pid} (started ")
    assert notes[0].endswith("babyterm train), which is no longer running")
    assert json.loads(paths.lock.read_text())["pid"] == os.getpid()
    lock.release()
    assert not paths.lock.exists() and holder(paths) is None


def test_stale_lock_file_is_taken_over(paths: BabyPaths, mode: str) -> None:
    pid = dead_pid()
    plant(paths, pid)
    notes: list[str] = []
    lock = BabyLock(paths, notes.append)
    lock.acquire("babyterm")
    assert len(notes) == 1 and f"process {pid} " in notes[0] and "no longer running" in notes[0]
    record = json.loads(paths.lock.read_text())
    assert record["pid"] == os.getpid() and record["command"] == "babyterm"
    assert set(record) == {"pid", "host", "started", "command"}
    lock.release()
    assert not paths.lock.exists()
    lock.release()  # twice is harmless


def test_lock_file_of_a_live_process_is_refused_without_flock(
    paths: BabyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "fcntl", None)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        plant(paths, alive.pid)
        with pytest.raises(SoulError, match=rf"process {alive.pid} \(started then, old run\)") as e:
            BabyLock(paths).acquire("babyterm")
        assert str(paths.lock) in str(e.value)  # without flock, say how to clear a wrong lock
        assert holder(paths)["pid"] == alive.pid
        plant(paths, alive.pid, host="elsewhere")  # another host's pid cannot be checked: refuse
        with pytest.raises(SoulError, match=f"process {alive.pid} on elsewhere"):
            BabyLock(paths).acquire("babyterm")
    finally:
        alive.kill()
        alive.wait()


def test_damaged_lock_file(paths: BabyPaths, mode: str) -> None:
    paths.root.mkdir(parents=True)
    paths.lock.write_text('{"pid": 12', encoding="utf-8")  # cut short by a crash
    lock = BabyLock(paths)
    if mode == "lock file":  # it might be a writer mid-write: refused while fresh
        with pytest.raises(SoulError, match="another process"):
            lock.acquire("babyterm")
        old = time.time() - 60
        os.utime(paths.lock, (old, old))
    lock.acquire("babyterm")
    assert json.loads(paths.lock.read_text())["pid"] == os.getpid()
    lock.release()


def test_hold_releases_and_leaves_no_empty_folder(paths: BabyPaths, mode: str) -> None:
    with BabyLock(paths).hold("babyterm train") as held:
        assert held.held and paths.lock.exists()
        with pytest.raises(SoulError, match="already training"):
            BabyLock(paths).acquire("babyterm")
    assert not held.held and not paths.lock.exists()
    assert not paths.root.exists()  # the lock made the folder; a baby never born leaves none
    paths.root.mkdir(parents=True)
    (paths.root / "config.json").write_text("{}")
    with pytest.raises(RuntimeError), BabyLock(paths).hold("x") as lock:
        lock.acquire("again")
    assert paths.root.exists() and not paths.lock.exists() and holder(paths) is None


def test_asking_who_holds_the_lock_never_refuses_a_trainer(paths: BabyPaths) -> None:
    """holder() takes the flock for an instant; a trainer that meets it waits it out, not refuses."""
    paths.root.mkdir(parents=True)
    done = threading.Event()
    probes = 0

    def probe() -> None:
        nonlocal probes
        while not done.is_set():
            holder(paths)
            probes += 1

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for _ in range(100):
            with BabyLock(paths).hold("babyterm train"):
                pass
    finally:
        done.set()
        prober.join()
    assert probes > 100
