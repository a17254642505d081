"""Checkpoints: weights and optimizer state in safetensors, trainer state in JSON, written atomically.

One folder per checkpoint under a baby's `checkpoints/`:

    step-00001234/  model.safetensors  optim.safetensors  state.json  manifest.json

The manifest is written last and holds the sha256 and size of the other three files, so a
checkpoint is valid exactly when its manifest parses and every file matches it. A checkpoint is
built in a `.tmp-step-…` folder and renamed into place; nothing here ever unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from torch import nn

from soul.atomic import fsync_dir
from soul.paths import SoulError

FORMAT = 1
MANIFEST = "manifest.json"
FILES = ("model.safetensors", "optim.safetensors", "state.json")
_STEP_RE = re.compile(r"^step-(\d{8,})$")
_OPTIM_META = "optimizer"  # key of the optimizer's JSON side in optim.safetensors' header


@dataclass
class Checkpoint:
    step: int
    path: Path
    model: dict[str, torch.Tensor]
    """Weights by name, for `load_model_tensors`."""
    optim: dict[str, Any]
    """An optimizer `state_dict()`, ready for `optimizer.load_state_dict`; {} when none was saved."""
    state: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    """One line for each newer checkpoint that was damaged and skipped."""


# -- model and optimizer <-> flat tensors -------------------------------------------------------


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with tied aliases (e.g. output.weight = tok_embeddings.weight) dropped.

    safetensors refuses tensors that share memory; a tied weight is kept under its first name and
    `load_model_tensors` fills every alias through the shared storage.
    """
    out: dict[str, torch.Tensor] = {}
    views: set[tuple] = set()
    storages: set[int] = set()
    for name, t in model.state_dict().items():
        if t.numel() == 0:  # empty tensors all report data_ptr 0; they cannot alias anything
            out[name] = t
            continue
        ptr = t.untyped_storage().data_ptr()
        view = (ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if view in views:
            continue
        # A partial overlap is not an alias: save its own copy so safetensors accepts it.
        out[name] = t.clone() if ptr in storages else t
        views.add(view)
        storages.add(ptr)
    return out


def load_model_tensors(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy `tensors` (from `model_tensors` or a checkpoint) into `model`, strictly.

    Everything is checked before anything is copied, so a mismatch leaves the model untouched.
    """
    expected = model_tensors(model)
    wrong = [f"lacks tensor {n}" for n in expected if n not in tensors]
    wrong += [f"has tensor {n}, which this brain lacks" for n in tensors if n not in expected]
    wrong += [
        f"has tensor {n} of shape {tuple(t.shape)}, this brain's is {tuple(expected[n].shape)}"
        for n, t in tensors.items()
        if n in expected and t.shape != expected[n].shape
    ]
    if wrong:
        more = f" (and {len(wrong) - 1} more problems)" if len(wrong) > 1 else ""
        raise SoulError(f"the checkpoint does not fit this brain: it {wrong[0]}{more}")
    targets = model.state_dict()  # views of the parameters: copying into them fills tied aliases too
    with torch.no_grad():
        for name, src in tensors.items():
            targets[name].copy_(src)


def flatten_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer `state_dict()` into flat tensors and a JSON-ready rest.

    Per-parameter tensors become `state.<param>.<key>`; tensor hyperparameters (a capturable lr)
    become `group.<i>.<key>`; everything else (numbers, bools, None, betas) goes to the JSON side.
    """
    tensors: dict[str, torch.Tensor] = {}
    extra: dict[str, dict[str, Any]] = {}
    for pid, st in sd.get("state", {}).items():
        for key, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = v.detach().contiguous()
            else:
                extra.setdefault(str(pid), {})[key] = v
    groups = []
    for i, g in enumerate(sd.get("param_groups", [])):
        plain = {}
        for key, v in g.items():
            if isinstance(v, torch.Tensor):
                tensors[f"group.{i}.{key}"] = v.detach().contiguous()
            else:
                plain[key] = list(v) if isinstance(v, tuple) else v
        groups.append(plain)
    return tensors, {"param_groups": groups, "state_extra": extra}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten_optimizer_state`: a dict for `optimizer.load_state_dict`."""
    # JSON has no tuples: every list in a group except `params` was a tuple (AdamW's betas).
    groups = [
        {k: v if k == "params" else tuple(v) if isinstance(v, list) else v for k, v in g.items()}
        for g in meta.get("param_groups", [])
    ]
    state: dict[int, dict[str, Any]] = {int(pid): dict(st) for pid, st in meta.get("state_extra", {}).items()}
    for name, t in tensors.items():
        kind, idx, key = name.split(".", 2)
        if kind == "state":
            state.setdefault(int(idx), {})[key] = t
        else:
            groups[int(idx)][key] = t
    return {"state": dict(sorted(state.items())), "param_groups": groups}


# -- writing ------------------------------------------------------------------------------------


def _seal(path: Path) -> dict[str, Any]:
    """Flush a written file to disk and describe it for the manifest."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
        return {"sha256": hashlib.file_digest(f, "sha256").hexdigest(), "size": os.fstat(f.fileno()).st_size}


def save_checkpoint(
    ckpt_dir: Path,
    step: int,
    model: dict[str, torch.Tensor],
    optim: dict[str, Any],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint `step` atomically, then keep only the newest `keep` valid ones.

    Args:
        model: weights, from `model_tensors(model)`.
        optim: the optimizer's `state_dict()` (or {}).
        state: the trainer's own JSON-serialisable state.

    Returns:
        The checkpoint's folder. Raises SoulError (touching nothing) on non-finite weights or a
        failed write.
    """
    for name, t in model.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise SoulError(f"refusing to save non-finite weights: {name}")
    ckpt_dir = Path(ckpt_dir)
    final = ckpt_dir / f"step-{step:08d}"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=ckpt_dir))
        try:
            _write_files(tmp, step, model, optim, state)
            if final.exists():  # the same step again: move the old one aside, never delete it first
                aside = Path(tempfile.mkdtemp(prefix=f".tmp-old-{final.name}-", dir=ckpt_dir))
                os.replace(final, aside / final.name)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(ckpt_dir)
    except (OSError, SafetensorError) as e:
        raise SoulError(f"cannot save checkpoint {final}: {getattr(e, 'strerror', None) or e}") from None
    _prune(ckpt_dir, step, keep)
    return final


def _write_files(tmp: Path, step: int, model: dict, optim: dict, state: dict) -> None:
    save_file({k: v.contiguous() for k, v in model.items()}, tmp / FILES[0])
    tensors, meta = flatten_optimizer_state(optim)
    save_file(tensors, tmp / FILES[1], metadata={_OPTIM_META: json.dumps(meta)})
    (tmp / FILES[2]).write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = {"format": FORMAT, "step": step, "files": {name: _seal(tmp / name) for name in FILES}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _seal(tmp / MANIFEST)
    fsync_dir(tmp)


def _prune(ckpt_dir: Path, step: int, keep: int) -> None:
    """Keep the new checkpoint and the newest `keep - 1` older valid ones; drop crash leftovers.

    Older ones are checked by manifest and sizes only, so a save never rereads gigabytes.
    Checkpoints newer than `step` are left alone (load_latest reports them if damaged).
    """
    kept = 1
    for s, path in reversed(list_checkpoints(ckpt_dir)):
        if s >= step:
            continue
        if kept < keep and _verify(path, deep=False) is None:
            kept += 1
        else:
            shutil.rmtree(path, ignore_errors=True)
    for leftover in ckpt_dir.glob(".tmp-*"):  # only one trainer per baby, so these are all stale
        shutil.rmtree(leftover, ignore_errors=True)


# -- reading ------------------------------------------------------------------------------------


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint folder, valid or not, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_RE.match(p.name)) and p.is_dir()]
    return sorted(found)


class _Damaged(Exception):
    """Why a checkpoint folder cannot be used, in a few words."""


def verify_checkpoint(path: Path) -> str | None:
    """None when the checkpoint is whole (every checksum matches), else the reason it is not."""
    return _verify(Path(path), deep=True)


def newest_whole(ckpt_dir: Path) -> tuple[int, list[tuple[str, str]]]:
    """The step of the newest checkpoint whose files are all there at their recorded sizes (0 for
    none), and the newer ones that are not, with why: cheap (no checksums), for listings such as
    `babyterm info`, which must not call a cut-short checkpoint healthy."""
    damaged: list[tuple[str, str]] = []
    for step, path in reversed(list_checkpoints(Path(ckpt_dir))):
        why = _verify(path, deep=False)
        if why is None:
            return step, damaged
        damaged.append((path.name, why))
    return 0, damaged


def _verify(path: Path, deep: bool) -> str | None:
    try:
        files = _manifest(path)["files"]
        for name in FILES:
            _file(path, name, files, deep)
    except _Damaged as e:
        return str(e)
    return None


def _manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _Damaged(f"{MANIFEST} missing") from None
    except (OSError, ValueError):
        raise _Damaged(f"{MANIFEST} unreadable") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _Damaged(f"{MANIFEST} malformed")
    if manifest.get("format") != FORMAT:
        raise _Damaged(f"format {manifest.get('format')!r}, this babyterm reads format {FORMAT}")
    m = _STEP_RE.match(path.name)
    if m is None or manifest.get("step") != int(m.group(1)):
        raise _Damaged(f"{MANIFEST} names step {manifest.get('step')!r}")
    return manifest


def _file(path: Path, name: str, files: dict[str, Any], deep: bool = True) -> bytes:
    """The file's bytes checked against the manifest (only its size when not `deep`).

    Loading uses these very bytes, so what was checked is exactly what is loaded.
    """
    entry = files.get(name)
    if not isinstance(entry, dict):
        raise _Damaged(f"{MANIFEST} lacks {name}")
    try:
        data = (path / name).read_bytes() if deep else b""
        size = len(data) if deep else (path / name).stat().st_size
    except FileNotFoundError:
        raise _Damaged(f"{name} missing") from None
    except OSError as e:
        raise _Damaged(f"{name} unreadable ({e.strerror or e})") from None
    if size != entry.get("size"):
        raise _Damaged(f"{name} is {size} bytes, expected {entry.get('size')}")
    if deep and hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise _Damaged(f"{name} checksum mismatch")
    return data


def _read(path: Path, step: int, device: str) -> Checkpoint:
    files = _manifest(path)["files"]
    # safetensors' load(bytes) gives tensors that own their memory; load_file would map the file,
    # which then cannot be deleted on Windows and faults if the file is ever cut short.
    model = {k: v.to(device) for k, v in load(_file(path, FILES[0], files)).items()}
    data = _file(path, FILES[1], files)
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])  # the safetensors header
    meta = json.loads(header.get("__metadata__", {}).get(_OPTIM_META, "{}"))
    # Optimizer state stays on the CPU: load_state_dict moves it beside each parameter and keeps
    # AdamW's `step` on the CPU, exactly where a fresh optimizer has it.
    optim = unflatten_optimizer_state(load(data), meta) if meta.get("param_groups") else {}
    state = json.loads(_file(path, FILES[2], files).decode("utf-8"))
    return Checkpoint(step=step, path=path, model=model, optim=optim, state=state)


def tensor_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """What `load_model_tensors` will accept for `model`: name -> shape (pass as `load_latest(expect=)`)."""
    return {name: tuple(t.shape) for name, t in model_tensors(model).items()}


def _misfit(tensors: dict[str, torch.Tensor], expect: Mapping[str, tuple[int, ...]]) -> str | None:
    """Why `tensors` do not fit a brain with these shapes, or None when they do."""
    for name, shape in expect.items():
        if name not in tensors:
            return f"does not fit this brain: lacks tensor {name}"
        if tuple(tensors[name].shape) != tuple(shape):
            got = tuple(tensors[name].shape)
            return f"does not fit this brain: tensor {name} has shape {got}, the brain's is {tuple(shape)}"
    extra = sorted(set(tensors) - set(expect))
    return f"does not fit this brain: has tensor {extra[0]}, which it lacks" if extra else None


def load_latest(
    ckpt_dir: Path,
    device: str | torch.device = "cpu",
    expect: Mapping[str, tuple[int, ...]] | None = None,
    validate: Callable[[Checkpoint], None] | None = None,
) -> Checkpoint | None:
    """The newest valid checkpoint, with a warning for each newer damaged one skipped.

    Args:
        expect: the brain's tensor shapes (`tensor_shapes(model)`); a checkpoint whose weights
            do not fit them counts as damaged, so an older one that fits is used instead.
        validate: a further check of a loaded checkpoint (its state, say); raising SoulError,
            ValueError, KeyError or TypeError makes it count as damaged too.

    Returns None when there is no checkpoint at all; raises SoulError when there are some but
    none is usable.
    """
    ckpt_dir = Path(ckpt_dir)
    damaged: list[tuple[str, str]] = []
    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            ckpt = _read(path, step, str(device))
            why = _misfit(ckpt.model, expect) if expect is not None else None
            if why is None and validate is not None:
                validate(ckpt)
        except _Damaged as e:
            damaged.append((path.name, str(e)))
            continue
        except (SoulError, ValueError, KeyError, IndexError, TypeError, SafetensorError) as e:
            # checksums fine, yet unusable
            damaged.append((path.name, f"unreadable: {(str(e) or type(e).__name__).splitlines()[0]}"))
            continue
        if why is not None:
            damaged.append((path.name, why))
            continue
        ckpt.warnings = [f"checkpoint {n} is damaged ({r}); using {path.name}" for n, r in damaged]
        return ckpt
    if not damaged:
        return None
    listed = "; ".join(f"{n}: {r}" for n, r in damaged)
    raise SoulError(f"no usable checkpoint in {ckpt_dir} ({listed}); move that folder aside to start afresh")
