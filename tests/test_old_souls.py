"""Babies made by older code keep working: a soul written by main 92febe8 opens, trains, saves and chats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from babyterm.cli import main
from babyterm.recall import recall
from school.commands import Chat
from school.events import ChatEvent, Event
from school.options import TrainOptions
from school.revive import revive
from school.tokenizer import BOS_ID
from school.tutor import Tutor
from soul import checkpoint as ckpt
from soul.milestones import list_milestones, load_milestone
from soul.paths import BabyPaths, SoulError, baby_paths
from soul.record import FORMAT_VERSION, BabyRecord
from tests.conftest import DATA

OLD_SOULS = DATA / "souls"


@pytest.fixture
def old(isolated_home: Path) -> BabyPaths:
    """main 92febe8's baby "old", copied into this test's home (the fixture itself is never touched)."""
    shutil.copytree(OLD_SOULS / "main-92febe8" / "old", isolated_home / "babies" / "old")
    return baby_paths("old", str(isolated_home))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """The text it was made on; the path in its config.json (a scratch folder) is long gone."""
    path = tmp_path / "library.txt"
    shutil.copy(DATA / "tinyshakespeare-start.txt", path)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_it_opens_with_its_checkpoint_milestone_and_history(old: BabyPaths) -> None:
    record = BabyRecord.load(old)
    assert record.format == 0 and record.unknown == {"version": 1}
    assert (record.brain_name, record.vocab_size) == ("transformer", 300)
    baby = revive(old)
    assert (baby.step, baby.warnings) == (100, [])
    assert list_milestones(old.milestones) == [100]
    weights = load_milestone(old.milestones, 100)
    assert torch.equal(weights["tok_embeddings.weight"], baby.model.state_dict()["tok_embeddings.weight"])
    kinds = {type(e).__name__ for e in recall(old, scribe_lines=5)}
    assert {"StepEvent", "EvalEvent", "ScribeEvent"} <= kinds


def test_it_trains_saves_and_stays_in_its_own_format(old: BabyPaths, library: Path) -> None:
    before = json.loads(old.config.read_text(encoding="utf-8"))
    tokenizer = old.tokenizer.read_bytes()
    options = TrainOptions(
        baby="old", library=str(library), steps=3, threads=1, device="cpu", precision="fp32"
    )
    tutor = Tutor(options)
    tutor.run()
    assert tutor.step == 103
    assert ckpt.list_checkpoints(old.checkpoints)[-1][0] == 103
    after = json.loads(old.config.read_text(encoding="utf-8"))
    assert "format" not in after  # still what main 92febe8's code reads (it refuses unknown fields)
    assert after == {**before, "library": str(library)}
    assert old.tokenizer.read_bytes() == tokenizer
    assert revive(old).step == 103


def test_it_chats_through_the_tutor(old: BabyPaths, library: Path) -> None:
    tutor = Tutor(TrainOptions(baby="old", library=str(library), threads=1, device="cpu", precision="fp32"))
    tutor.prepare()
    heard: list[Event] = []
    tutor.subscribe(heard.append)
    had = len(lines(old.chat))
    tutor.handle(Chat(id="r9", text="First Citizen:", max_tokens=12, seed=1))
    replies = [e for e in heard if isinstance(e, ChatEvent)]
    assert replies and replies[-1].final
    new = lines(old.chat)[had:]
    assert [r["role"] for r in new] == ["you", "baby"] and new[0]["text"] == "First Citizen:"


@pytest.mark.parametrize("where", [["--step", "100"], []])
def test_it_chats_through_the_cli(old: BabyPaths, capsys, where: list[str]) -> None:
    had = len(lines(old.chat))
    code = main(
        ["--baby", "old", "chat", *where, "--temperature", "1", "--seed", "3", "--max-tokens", "12", "To"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() and not err
    new = lines(old.chat)[had:]
    assert [r["role"] for r in new] == ["you", "baby"]
    assert new[1]["text"] == out.strip("\n") and new[1]["step"] == 100


def test_a_new_baby_records_the_current_format(isolated_home: Path) -> None:
    paths = baby_paths("new", str(isolated_home))
    paths.root.mkdir(parents=True)
    BabyRecord({"brain": "transformer", "vocab_size": 300}, "tiny", {}, None).save(paths)
    assert json.loads(paths.config.read_text(encoding="utf-8"))["format"] == FORMAT_VERSION
    assert BabyRecord.load(paths).format == FORMAT_VERSION


@pytest.mark.parametrize(
    "change,words",
    [
        ({"format": FORMAT_VERSION + 1}, ["newer babyterm", f"format {FORMAT_VERSION + 1}"]),
        ({"format": "1"}, ["damaged config.json"]),
        ({"format": -1}, ["damaged config.json"]),
        ({"brain": None}, ["damaged config.json"]),
    ],
)
def test_a_record_it_cannot_read_is_one_line(old: BabyPaths, capsys, change: dict, words: list[str]) -> None:
    data = {**json.loads(old.config.read_text(encoding="utf-8")), **change}
    old.config.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SoulError) as refused:
        BabyRecord.load(old)
    assert all(w in str(refused.value) for w in words) and "\n" not in str(refused.value)
    code = main(["chat", "--baby", "old", "hello"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words[0] in err


def test_unknown_fields_are_kept(old: BabyPaths) -> None:
    data = {**json.loads(old.config.read_text(encoding="utf-8")), "later": {"x": 1}}
    old.config.write_text(json.dumps(data), encoding="utf-8")
    record = BabyRecord.load(old)
    record.save(old)
    assert json.loads(old.config.read_text(encoding="utf-8")) == data


def test_its_prompts_keep_its_own_convention_no_bos(old: BabyPaths, library: Path) -> None:
    tutor = Tutor(TrainOptions(baby="old", library=str(library), threads=1, device="cpu", precision="fp32"))
    tutor.prepare()
    assert not tutor.record.bos_prompt
    tutor.handle(Chat(id="r8", text="First Citizen:", max_tokens=3, temperature=0))
    assert BOS_ID not in tutor.speaker.insights["r8"]["ids"]
