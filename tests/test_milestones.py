"""Milestones' record (manifest.json): versioned, validated on read, main 92febe8's format still read."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from soul.milestones import (
    MANIFEST_FORMAT,
    Milestone,
    load_milestone,
    milestone_name,
    read_manifest,
    save_milestone,
)
from soul.paths import SoulError
from tests.conftest import DATA

TENSORS = {"w": torch.arange(6.0).reshape(2, 3)}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_a_saved_milestone_has_a_versioned_record(tmp_path: Path) -> None:
    path = save_milestone(tmp_path, 100, TENSORS)
    data = manifest(tmp_path)
    assert data["format"] == MANIFEST_FORMAT
    [entry] = data["milestones"]
    assert entry["file"] == path.name and entry["step"] == 100 and entry["size"] == path.stat().st_size
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_manifest(tmp_path) == {100: Milestone.from_dict(entry)}
    assert torch.equal(load_milestone(tmp_path, 100)["w"], TENSORS["w"])


def test_main_92febe8s_manifest_reads_and_moves_to_the_current_format(tmp_path: Path) -> None:
    folder = tmp_path / "milestones"
    shutil.copytree(DATA / "souls/main-92febe8/old/milestones", folder)
    old = manifest(folder)
    assert "format" not in old  # format 0: file name -> sha256
    assert read_manifest(folder)[100].sha256 == old[milestone_name(100)]
    weights = load_milestone(folder, 100)
    save_milestone(folder, 1000, TENSORS)
    assert manifest(folder)["format"] == MANIFEST_FORMAT
    assert sorted(read_manifest(folder)) == [100, 1000]
    assert all(torch.equal(weights[k], v) for k, v in load_milestone(folder, 100).items())


@pytest.mark.parametrize(
    "text,words",
    [
        ("{not json", "damaged"),
        ("[1, 2]", "damaged"),
        (json.dumps({"format": MANIFEST_FORMAT + 1, "milestones": []}), "cannot read"),
        (json.dumps({"format": MANIFEST_FORMAT, "milestones": "all"}), "cannot read"),
    ],
)
def test_a_damaged_manifest_is_a_message_not_a_crash(tmp_path: Path, text: str, words: str) -> None:
    save_milestone(tmp_path, 100, TENSORS)
    (tmp_path / "manifest.json").write_text(text, encoding="utf-8")
    said: list[str] = []
    assert read_manifest(tmp_path, said.append) == {}
    assert len(said) == 1 and words in said[0]
    with pytest.raises(SoulError, match="no sound record") as refused:
        load_milestone(tmp_path, 100)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "damage",
    [
        {"sha256": "abc"},
        {"step": -1},
        {"step": "100"},
        {"size": "big"},
        {"saved": True},
        {"file": "step-00000999.safetensors"},
    ],
)
def test_a_damaged_record_is_skipped_and_the_others_stay(tmp_path: Path, damage: dict) -> None:
    for step in (100, 1000):
        save_milestone(tmp_path, step, TENSORS)
    data = manifest(tmp_path)
    data["milestones"][0].update(damage)
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    said: list[str] = []
    assert list(read_manifest(tmp_path, said.append)) == [1000]
    assert len(said) == 1 and "record 1" in said[0] and "skipped" in said[0]
    load_milestone(tmp_path, 1000)
    with pytest.raises(SoulError):
        load_milestone(tmp_path, 100)


def test_a_damaged_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = save_milestone(tmp_path, 100, TENSORS)
    path.write_bytes(path.read_bytes()[:-8])  # cut short
    with pytest.raises(SoulError, match="damaged"):
        load_milestone(tmp_path, 100)
    garbage = b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}"  # not safetensors, yet its record says so
    path.write_bytes(garbage)
    record = Milestone(100, hashlib.sha256(garbage).hexdigest(), len(garbage))
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": MANIFEST_FORMAT, "milestones": [record.to_dict()]}), encoding="utf-8"
    )
    with pytest.raises(SoulError, match="damaged") as refused:
        load_milestone(tmp_path, 100)
    assert "\n" not in str(refused.value)
