"""The transformer's one-token step in C (kernels/decode.c), built once per machine, where it can be.

A one-token step in torch is ~115 small ops; on a slow 2-core CPU each costs ~8 us to dispatch,
four times the matmuls between them, so chat is bound by overhead, not arithmetic. The C step
does the same float32 arithmetic in one call. It is built with the C compiler on PATH the first
time chat needs it and kept in the user cache folder, keyed by the source, the compiler and the
CPU (it is built for this CPU's instructions). Without a compiler, or if the build fails, or with
BABYTERM_NATIVE=off, the torch step serves as before: nothing else changes.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import torch

SOURCE = Path(__file__).resolve().parent / "kernels" / "decode.c"
ABI = 1
"""babyterm_abi()'s answer: the Model layout below."""
ENV = "BABYTERM_NATIVE"
"""off: always the torch step (the reference the C step is tested against)."""
CACHE_ENV = "BABYTERM_KERNELS"
"""Where built kernels go; default: the user cache folder's kernels/."""


def c_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and (found := shutil.which(name)):
            return found
    return None


def _cpu() -> str:
    """What the build depends on besides the source: -march=native targets this CPU."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [line for line in info.splitlines() if line.startswith(("model name", "flags", "Features"))]
        return "\n".join(dict.fromkeys(lines))
    except OSError:
        return platform.processor()


def _build(compiler: str, target: Path) -> bool:
    """Compile SOURCE to `target` atomically: a temp file beside it, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.stem, suffix=".tmp")
    os.close(fd)
    try:
        for arch in (["-march=native"], []):  # some compilers (older Apple clang) refuse native
            cmd = [compiler, "-O3", *arch, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"]
            try:
                done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired):
                return False
            if done.returncode == 0:
                os.replace(tmp, target)
                return True
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


@functools.cache
def library() -> Any | None:
    """The built kernel, loaded; None where there is none to be had (asked once per process)."""
    if os.environ.get(ENV) == "off" or sys.platform == "win32":
        return None
    compiler = c_compiler()
    if compiler is None or not SOURCE.is_file():
        return None
    key = hashlib.sha256(
        b"\0".join(s.encode() for s in (SOURCE.read_text(), compiler, platform.machine(), _cpu()))
    ).hexdigest()[:16]
    folder = Path(os.environ.get(CACHE_ENV) or Path(platformdirs.user_cache_dir("babyterm")) / "kernels")
    path = folder / f"decode-{key}.so"
    try:
        if not path.is_file() and not _build(compiler, path):
            return None
        lib = ctypes.CDLL(str(path))
        if lib.babyterm_abi() != ABI:
            return None
    except OSError:
        return None
    lib.babyterm_decode.argtypes = [ctypes.POINTER(_Model), ctypes.c_int, ctypes.c_int] + [
        ctypes.c_void_p
    ] * 4
    lib.babyterm_decode.restype = None
    return lib


_floats = ctypes.POINTER(ctypes.c_float)


class _Model(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int) for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "head_size")),
        *((name, ctypes.c_int) for name in ("hidden_dim", "vocab_size", "seq_len")),
        ("eps", ctypes.c_float),
        ("embeddings", _floats),
        *((name, ctypes.POINTER(_floats)) for name in ("wqkv", "wo", "w13", "w2")),
        ("head", _floats),
        ("cos", _floats),
        ("sin", _floats),
        ("kv", ctypes.POINTER(_floats)),
        ("scratch", _floats),
    ]


def _ptr(t: torch.Tensor) -> Any:
    if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError("the C step needs contiguous float32 CPU tensors")
    return ctypes.cast(t.data_ptr(), _floats)


class NativeDecoder:
    """One cache's C step: the matrices it reads and the cache it writes, held for its lifetime."""

    def __init__(
        self,
        cfg: Any,
        embeddings: torch.Tensor,
        layers: list[tuple[torch.Tensor, ...]],
        head: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kv: list[torch.Tensor],
    ) -> None:
        lib = library()
        if lib is None:
            raise RuntimeError("no C step on this machine")
        self._fn = lib.babyterm_decode
        self.n_layers, self.n_heads, self.vocab_size = cfg.n_layers, cfg.n_heads, cfg.vocab_size
        width = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_size
        scratch = torch.empty(3 * cfg.dim + width + 2 * cfg.hidden_dim + cfg.max_seq_len)
        self._keep = (embeddings, layers, head, cos, sin, kv, scratch)  # the C side only borrows them
        arrays = [(_floats * cfg.n_layers)(*(_ptr(layer[j]) for layer in layers)) for j in range(4)]
        caches = (_floats * cfg.n_layers)(*(_ptr(t) for t in kv))
        self._arrays = (arrays, caches)
        self._model = _Model(
            cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_size,
            cfg.hidden_dim, cfg.vocab_size, cfg.max_seq_len, cfg.norm_eps,
            _ptr(embeddings), *arrays, _ptr(head), _ptr(cos), _ptr(sin), caches, _ptr(scratch),
        )  # fmt: skip
        self._ref = ctypes.byref(self._model)

    def step(
        self,
        token: int,
        pos: int,
        shift: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (V,) of the token after `token` at `pos`, and with need_weights every layer's
        attention weights (layers, heads, pos + 1). shift: the pixel's (dim,) input; key_bias:
        a log-weight per key position (at least pos + 1 of them)."""
        if not 0 <= token < self.vocab_size:
            raise IndexError(f"token id {token} is outside the vocabulary of {self.vocab_size}")
        logits = torch.empty(self.vocab_size)
        weights = torch.empty(self.n_layers, self.n_heads, pos + 1) if need_weights else None
        if shift is not None:
            shift = shift.detach().reshape(-1).float().contiguous()
        if key_bias is not None:
            key_bias = key_bias.reshape(-1)[: pos + 1].float().contiguous()
            if key_bias.numel() < pos + 1:
                raise ValueError(f"key_bias has {key_bias.numel()} positions, the step sees {pos + 1}")
        self._fn(
            self._ref,
            token,
            pos,
            None if shift is None else shift.data_ptr(),
            None if key_bias is None else key_bias.data_ptr(),
            logits.data_ptr(),
            None if weights is None else weights.data_ptr(),
        )
        return logits, weights
