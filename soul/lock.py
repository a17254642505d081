"""One baby, one trainer: a lock on a baby that names who holds it and dies with its holder.

Where the OS has `flock`, the lock is the kernel's: an exclusive flock on the baby's folder. Two
racing processes cannot both win it, and the kernel drops it when its holder exits, however it
dies. The folder is locked rather than `trainer.lock` because that file is replaced atomically and
removed on release, and a lock on a file that is renamed over or unlinked stops excluding anyone.
`trainer.lock` says who holds the lock (JSON: pid, host, started, command) for the message a
second trainer prints; one left behind by a killed trainer is taken over with a logged note.

Without flock (Windows, or a filesystem that refuses it) `trainer.lock` itself is the lock,
created with O_EXCL; one whose process is gone from this host is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from soul.atomic import write_json_atomic
from soul.paths import BabyPaths, SoulError, file_in_the_way

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

UNREADABLE_STALE_S = 10.0  # a lock file nobody could parse for this long was cut short by a crash
BUSY_WAIT_S = 1.0  # how long a held lock may go without a live holder's record before refusing


def _alive(pid: int) -> bool:
    """Whether process `pid` is running on this host (a zombie counts: it is not reaped yet)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists, as someone else
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def _read(paths: BabyPaths) -> dict[str, Any] | None:
    """The holder's record in trainer.lock, or None when there is none or it cannot be parsed."""
    try:
        info = json.loads(paths.lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _stale(paths: BabyPaths, info: dict[str, Any] | None) -> bool:
    """Whether a lock file's holder is surely gone (only provable for a process on this host)."""
    if info is None:
        try:
            return time.time() - paths.lock.stat().st_mtime > UNREADABLE_STALE_S
        except OSError:
            return True
    return info.get("host") == socket.gethostname() and not _alive(info["pid"])


def _describe(info: dict[str, Any]) -> str:
    host = info.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"process {info['pid']}{where} (started {info.get('started', '?')}, {info.get('command', '?')})"


class BabyLock:
    """The right to train (write the soul of) one baby. `acquire`/`release`, or `with lock.hold(cmd):`."""

    def __init__(self, paths: BabyPaths, log: Callable[[str], None] | None = None) -> None:
        self.paths = paths
        self.log = log or (lambda message: None)
        self._fd: int | None = None  # the locked folder, when flock is the lock
        self._owns_file = False  # trainer.lock created with O_EXCL, when it is the lock
        self._made_root = False

    @property
    def held(self) -> bool:
        return self._fd is not None or self._owns_file

    def acquire(self, command: str) -> None:
        """Take the lock, or raise SoulError naming the process that holds it."""
        if self.held:
            raise RuntimeError("this BabyLock is already held")
        root = self.paths.root
        blocked = file_in_the_way(root)
        if blocked is not None:
            raise SoulError(f"cannot write to {root}: {blocked} is a file, not a folder")
        try:
            self._made_root = not root.exists()
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SoulError(f"cannot write to {root}: {e.strerror or e}") from None
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": command,
        }
        try:
            if fcntl is None or not self._flock():
                self._create(me)
                return
            self._note_takeover(_read(self.paths))
            write_json_atomic(self.paths.lock, me)
        except BaseException:
            self.release()
            raise

    def _flock(self) -> bool:
        """Lock the folder; False when this filesystem cannot flock (use the lock file instead)."""
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                fd = os.open(self.paths.root, os.O_RDONLY)
            except OSError as e:
                raise SoulError(f"cannot open {self.paths.root}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked, now = os.fstat(fd), os.stat(self.paths.root)
            except BlockingIOError:
                os.close(fd)
                # Held. Refuse once a live holder's record names it; until then it may be a
                # holder() probe, or a new holder still writing its record: try again shortly.
                info = _read(self.paths)
                if (info is not None and not _stale(self.paths, info)) or time.monotonic() > deadline:
                    raise SoulError(self._busy(info)) from None
                time.sleep(0.01)
                continue
            except OSError:  # e.g. NFS, which emulates flock with write locks a folder cannot take
                os.close(fd)
                return False
            if (locked.st_dev, locked.st_ino) == (now.st_dev, now.st_ino):
                self._fd = fd
                return True
            os.close(fd)  # the folder was removed and made again meanwhile: lock the new one
            if time.monotonic() > deadline:
                raise SoulError(f"cannot lock {self.paths.root}: it keeps being replaced")
            self.paths.root.mkdir(parents=True, exist_ok=True)

    def _create(self, me: dict[str, Any]) -> None:
        """Without flock: trainer.lock is the lock, created only if absent (or left by a dead process)."""
        for _ in range(3):
            try:
                fd = os.open(self.paths.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                info = _read(self.paths)
                if not _stale(self.paths, info):
                    hint = f" (if it is not running, delete {self.paths.lock})"
                    raise SoulError(self._busy(info) + hint) from None
                self._note_takeover(info)
                self.paths.lock.unlink(missing_ok=True)
                continue
            except OSError as e:
                raise SoulError(f"cannot write {self.paths.lock}: {e.strerror or e}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(me) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._owns_file = True
            return
        raise SoulError(self._busy(_read(self.paths)))

    def _busy(self, info: dict[str, Any] | None) -> str:
        who = _describe(info) if info is not None else "another process"
        return f"baby {self.paths.name!r} is already training in {who}; stop it first"

    def _note_takeover(self, info: dict[str, Any] | None) -> None:
        if info is not None and info.get("pid") != os.getpid():
            self.log(f"took over the lock of {_describe(info)}, which is no longer running")
        elif info is None and self.paths.lock.exists():
            self.log(f"took over a damaged lock file {self.paths.lock}")

    def release(self) -> None:
        """Give the lock back (safe to call twice). The kernel also drops a flock when its holder dies."""
        if not self.held:
            return
        info = _read(self.paths)
        # remove the record while still holding the lock: once unlocked, a new holder writes its own
        if info is None or info.get("pid") == os.getpid():
            self.paths.lock.unlink(missing_ok=True)
        if self._made_root:  # a baby that was never born leaves no empty folder behind
            with contextlib.suppress(OSError):
                self.paths.root.rmdir()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd, self._owns_file, self._made_root = None, False, False

    @contextlib.contextmanager
    def hold(self, command: str) -> Iterator[BabyLock]:
        """`with BabyLock(paths).hold("babyterm train"):` holds the lock for the block."""
        self.acquire(command)
        try:
            yield self
        finally:
            self.release()


def holder(paths: BabyPaths) -> dict[str, Any] | None:
    """The record of the process that holds the baby's lock now ({} if unwritten), or None if nobody does."""
    if not paths.root.is_dir():
        return None
    if fcntl is not None:
        try:
            fd = os.open(paths.root, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(paths) or {}  # {}: held, its record not written yet
        except OSError:
            pass  # no flock here: fall through to the lock file
        else:
            return None  # closing the fd below drops the probe's lock
        finally:
            os.close(fd)
    info = _read(paths)
    return None if not paths.lock.exists() or _stale(paths, info) else info
