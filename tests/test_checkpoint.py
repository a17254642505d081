"""Checkpoints: exact round trips, pruning, falling back past damage, and surviving a kill mid-save."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import brain
from soul.checkpoint import (
    flatten_optimizer_state,
    list_checkpoints,
    load_latest,
    load_model_tensors,
    model_tensors,
    save_checkpoint,
    unflatten_optimizer_state,
    verify_checkpoint,
)
from soul.paths import SoulError

torch.set_num_threads(1)


def tiny_brain(seed: int = 0) -> brain.Brain:
    torch.manual_seed(seed)
    cfg = brain.preset_config("transformer", "tiny", 64, dim=32, n_layers=2, n_heads=2, max_seq_len=16)
    return brain.build_brain(cfg)


def train_step(model: brain.Brain, opt: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 64, (2, 9), generator=g)
    logits, _ = model(x[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
    opt.zero_grad()
    loss.backward()
    opt.step()


def save_simple(d: Path, step: int, keep: int = 2) -> Path:
    """A small checkpoint whose contents say which step it is."""
    model = {"w": torch.full((4, 4), float(step)), "b": torch.arange(3)}
    return save_checkpoint(d, step, model, {}, {"step": step}, keep=keep)


def test_round_trip_is_exact_including_adamw(tmp_path: Path) -> None:
    model = tiny_brain(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)
    for i in range(3):
        train_step(model, opt, i)
    tensors = model_tensors(model)
    assert "output.weight" not in tensors  # tied to tok_embeddings.weight: stored once
    save_checkpoint(tmp_path, 3, tensors, opt.state_dict(), {"tokens_seen": 48, "loss": 4.1})

    ckpt = load_latest(tmp_path)
    assert ckpt is not None and ckpt.step == 3 and ckpt.warnings == []
    assert ckpt.state == {"tokens_seen": 48, "loss": 4.1}
    assert ckpt.model.keys() == tensors.keys()
    assert all(torch.equal(ckpt.model[k], tensors[k]) for k in tensors)

    twin = tiny_brain(1)  # different init: everything must come from the checkpoint
    load_model_tensors(twin, ckpt.model)
    assert twin.output.weight is twin.tok_embeddings.weight  # the tie survives loading
    x = torch.randint(0, 64, (2, 8))
    with torch.no_grad():
        assert torch.equal(twin(x)[0], model(x)[0])

    twin_opt = torch.optim.AdamW(twin.parameters(), lr=0.5)
    twin_opt.load_state_dict(ckpt.optim)
    assert twin_opt.param_groups[0]["betas"] == (0.8, 0.95)
    step = twin_opt.state_dict()["state"][0]["step"]
    assert step.dtype == opt.state_dict()["state"][0]["step"].dtype and step.shape == torch.Size([])
    train_step(model, opt, 99)
    train_step(twin, twin_opt, 99)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_optimizer_flattening_keeps_every_kind_of_value() -> None:
    sd = {
        "state": {3: {"step": torch.tensor(7.0), "buf": torch.ones(2, 2).t(), "note": None}, 1: {"k": 2}},
        "param_groups": [{"lr": torch.tensor(0.1), "betas": (0.9, 0.99), "fused": None, "params": [1, 3]}],
    }
    tensors, meta = flatten_optimizer_state(sd)
    assert all(t.is_contiguous() for t in tensors.values())
    back = unflatten_optimizer_state(tensors, json.loads(json.dumps(meta)))
    assert back["state"].keys() == {1, 3} and back["state"][1] == {"k": 2}
    assert back["state"][3]["note"] is None and torch.equal(back["state"][3]["buf"], torch.ones(2, 2))
    assert back["state"][3]["step"].shape == torch.Size([])
    group = back["param_groups"][0]
    assert group["betas"] == (0.9, 0.99) and group["params"] == [1, 3] and group["fused"] is None
    assert torch.equal(group["lr"], torch.tensor(0.1))


def test_load_model_tensors_is_strict(tmp_path: Path) -> None:
    model = tiny_brain()
    tensors = dict(model_tensors(model))
    before = model.norm.weight.clone()
    bad = {**tensors, "norm.weight": torch.zeros(5)}
    with pytest.raises(SoulError, match=r"has tensor norm\.weight of shape \(5,\), this brain's is \(32,\)$"):
        load_model_tensors(model, bad)
    assert torch.equal(model.norm.weight, before)  # nothing copied on failure
    with pytest.raises(SoulError, match=r"it lacks tensor norm\.weight$"):
        load_model_tensors(model, {k: v for k, v in tensors.items() if k != "norm.weight"})
    with pytest.raises(SoulError, match="has tensor extra, which this brain lacks"):
        load_model_tensors(model, {**tensors, "extra": torch.zeros(1)})


def test_keep_prunes_old_checkpoints_and_stale_tmp(tmp_path: Path) -> None:
    (tmp_path / ".tmp-step-00000001-crashed").mkdir(parents=True)
    (tmp_path / ".tmp-step-00000001-crashed" / "model.safetensors").write_bytes(b"half")
    for step in (1, 2, 3, 4):
        save_simple(tmp_path, step)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
    assert not list(tmp_path.glob(".tmp-*"))
    save_simple(tmp_path, 4)  # the same step again replaces it safely
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
    assert all(verify_checkpoint(p) is None for _, p in list_checkpoints(tmp_path))
    assert not list(tmp_path.glob(".tmp-*"))
    save_simple(tmp_path, 5, keep=3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4, 5]


def truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-7])


def flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x40
    p.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: truncate(d / "model.safetensors"), "model.safetensors is"),
        (lambda d: flip_byte(d / "optim.safetensors"), "optim.safetensors checksum mismatch"),
        (lambda d: flip_byte(d / "state.json"), "state.json checksum mismatch"),
        (lambda d: (d / "manifest.json").unlink(), "manifest.json missing"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json unreadable"),
        (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors is 0 bytes"),
        (lambda d: (d / "state.json").unlink(), "state.json missing"),
    ],
)
def test_damaged_newest_falls_back_with_warning(tmp_path: Path, damage, reason: str) -> None:
    save_simple(tmp_path, 1100)
    newest = save_simple(tmp_path, 1200)
    damage(newest)
    ckpt = load_latest(tmp_path)
    assert ckpt is not None and ckpt.step == 1100 and ckpt.state == {"step": 1100}
    assert torch.equal(ckpt.model["w"], torch.full((4, 4), 1100.0))
    assert len(ckpt.warnings) == 1
    assert ckpt.warnings[0].startswith("checkpoint step-00001200 is damaged (")
    assert reason in ckpt.warnings[0] and ckpt.warnings[0].endswith("; using step-00001100")


def test_matching_checksums_over_garbage_is_damaged_too(tmp_path: Path) -> None:
    save_simple(tmp_path, 1)
    newest = save_simple(tmp_path, 2)
    garbage = b"\x08" + b"\x00" * 7 + b"not json"
    (newest / "model.safetensors").write_bytes(garbage)
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["files"]["model.safetensors"] = {"sha256": hashlib.sha256(garbage).hexdigest(), "size": 16}
    (newest / "manifest.json").write_text(json.dumps(manifest))
    ckpt = load_latest(tmp_path)
    assert ckpt is not None and ckpt.step == 1
    assert ckpt.warnings[0].startswith("checkpoint step-00000002 is damaged (unreadable: ")


def test_all_damaged_raises_and_none_is_none(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "nowhere") is None
    assert load_latest(tmp_path) is None
    for step in (1, 2):
        flip_byte(save_simple(tmp_path, step) / "model.safetensors")
    with pytest.raises(SoulError, match=r"no usable checkpoint.*step-00000002: model\.safetensors checksum"):
        load_latest(tmp_path)


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    good = save_simple(tmp_path, 1)
    manifest = (good / "manifest.json").read_bytes()
    for bad in (float("nan"), float("inf")):
        model = {"ok": torch.zeros(2), "w": torch.tensor([1.0, bad])}
        with pytest.raises(SoulError, match="refusing to save non-finite weights: w"):
            save_checkpoint(tmp_path, 2, model, {}, {})
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    assert (good / "manifest.json").read_bytes() == manifest and verify_checkpoint(good) is None
    assert not list(tmp_path.glob(".tmp-*"))


# Imports torch once, then for each folder named on stdin forks a saver that saves there forever,
# each step twice (so replacing an existing folder is exercised too); prints its pid, and its
# wait status once it is killed. Forking spares four torch imports; nothing has run in torch yet,
# so the fork is safe. The tensors are a few MB so that a kill often lands inside a write.
SAVER = textwrap.dedent(
    """
    import os, sys, torch
    from soul.checkpoint import save_checkpoint
    torch.set_num_threads(1)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                i = 0
                while True:
                    step = 2 + i // 2
                    w = torch.full((256, 1024), float(step))
                    model = {"w": w, "b": torch.arange(3)}
                    optim = {"state": {0: {"m": -w}}, "param_groups": [{"params": [0]}]}
                    save_checkpoint(line.strip(), step, model, optim, {"step": step})
                    i += 1
            finally:
                os._exit(1)
        print(pid, flush=True)
        print(os.waitpid(pid, 0)[1], flush=True)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_kill_mid_save_always_leaves_a_valid_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(1234)
    folders = [tmp_path / f"trial{i}" for i in range(5)]
    for d in folders:
        save_simple(d, 1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for d in folders:
            proc.stdin.write(f"{d}\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            time.sleep(rng.uniform(0.05, 0.5))
            with contextlib.suppress(ProcessLookupError):  # already gone: the status says why
                os.kill(pid, signal.SIGKILL)
            status = int(proc.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL  # killed, not crashed
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait()
        proc.stdout.close()
    for d in folders:
        ckpt = load_latest(d)
        assert ckpt is not None and ckpt.warnings == []  # renames are atomic: no half checkpoint shows
        assert ckpt.state == {"step": ckpt.step}
        assert bool((ckpt.model["w"] == ckpt.step).all())
        if ckpt.step > 1:
            assert bool((ckpt.optim["state"][0]["m"] == -ckpt.step).all())
        else:
            assert ckpt.optim == {}
        # The next save cleans up whatever the kill left behind.
        save_simple(d, ckpt.step + 100)
        assert not list(d.glob(".tmp-*"))
        assert [s for s, _ in list_checkpoints(d)] == [ckpt.step, ckpt.step + 100]


def test_manifest_records_sizes_and_hashes(tmp_path: Path) -> None:
    path = save_simple(tmp_path, 7)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["step"] == 7 and manifest["format"] == 1
    assert set(manifest["files"]) == {"model.safetensors", "optim.safetensors", "state.json"}
    for name, entry in manifest["files"].items():
        assert entry["size"] == (path / name).stat().st_size and len(entry["sha256"]) == 64


def test_atomic_writes_get_the_mode_any_new_file_gets(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: an export's config.json was private while its tokenizer.json was not."""
    import os

    from soul.atomic import write_text_atomic

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_text_atomic(atomic, "x")
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
