"""Safe files: no code runs from a planted pickle, damaged files are refused or fallen back from with one
clear line, and no product module can unpickle or evaluate anything."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import torch
from safetensors.torch import load as safetensors_load

import brain
from babyterm.cli import main
from school import tokenizer as T
from school.revive import revive
from school.syllabus import SYLLABI
from soul import checkpoint as ckpt
from soul.paths import BabyPaths, SoulError
from soul.record import BabyRecord

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 300
TINY = dict(dim=32, n_layers=2, n_heads=2, max_seq_len=16)


# -- a small saved baby, made without training ----------------------------------------------------


def tiny_model(vocab: int = VOCAB, **overrides: int) -> brain.Brain:
    torch.manual_seed(0)
    return brain.build_brain(brain.preset_config("transformer", "tiny", vocab, **{**TINY, **overrides}))


def save(paths: BabyPaths, step: int, model: brain.Brain | None = None) -> Path:
    tensors = ckpt.model_tensors(model or tiny_model())
    return ckpt.save_checkpoint(paths.checkpoints, step, tensors, {}, {"step": step}, keep=10)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baby with a tokenizer, a record, a library and checkpoints at steps 10 and 20."""
    home = tmp_path_factory.mktemp("template")
    paths = BabyPaths(home, "baby")
    library = home / "library"
    library.mkdir()
    for name in sorted(topics)[:12]:
        (library / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    tok = T.train_tokenizer((p.read_text(encoding="utf-8") for p in sorted(library.iterdir())), VOCAB)
    assert tok.get_vocab_size() == VOCAB
    T.save_tokenizer(tok, paths.tokenizer)
    cfg = brain.preset_config("transformer", "tiny", VOCAB, **TINY)
    BabyRecord(cfg.to_dict(), "tiny", SYLLABI["tiny"].to_dict(), str(library)).save(paths)
    for step in (10, 20):
        save(paths, step)
    return home


@pytest.fixture
def baby(template: Path, isolated_home: Path) -> BabyPaths:
    """A fresh copy of the template baby in this test's BABYTERM_HOME."""
    shutil.copytree(template, isolated_home)
    paths = BabyPaths(isolated_home, "baby")
    record = BabyRecord.load(paths)
    record.library = str(isolated_home / "library")
    record.save(paths)
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def reseal(folder: Path, name: str) -> None:
    """Make the manifest match a planted file, so the file reaches its parser past the checksum."""
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


# -- no code execution from files -----------------------------------------------------------------


class Evil:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payloads(marker: Path) -> dict[str, bytes]:
    out = {f"pickle-{p}": pickle.dumps(Evil(marker), protocol=p) for p in (0, 2, 5)}
    torch_file = marker.parent / "evil.pt"
    torch.save({"model": Evil(marker)}, torch_file)  # torch.save's zip: what a shared model.pt is
    out["torch.save"] = torch_file.read_bytes()
    return out


def test_the_payloads_really_are_malicious(tmp_path: Path) -> None:
    """Unpickled, each payload runs its command: the tests below would see it if babyterm did."""
    for name, data in payloads(tmp_path / "canary").items():
        (tmp_path / "canary").unlink(missing_ok=True)
        if name == "torch.save":
            (tmp_path / "x.pt").write_bytes(data)
            torch.load(tmp_path / "x.pt", weights_only=False)
        else:
            pickle.loads(data)
        assert (tmp_path / "canary").exists(), name


CHECKPOINT_FILES = ["model.safetensors", "optim.safetensors", "state.json"]


@pytest.mark.parametrize("kind", ["pickle-0", "pickle-2", "pickle-5", "torch.save"])
def test_planted_pickles_never_run(baby: BabyPaths, tmp_path: Path, capsys, kind: str) -> None:
    marker = tmp_path / "pwned"
    data = payloads(marker)[kind]
    newest = paths_step(baby, 20)
    tried = 0
    for name in CHECKPOINT_FILES:  # each checkpoint file, checksummed so it reaches its parser
        backup = (newest / name).read_bytes()
        (newest / name).write_bytes(data)
        reseal(newest, name)
        found = ckpt.load_latest(baby.checkpoints)
        assert found is not None and found.step == 10 and "step-00000020 is damaged" in found.warnings[0]
        assert revive(baby).step == 10
        (newest / name).write_bytes(backup)
        reseal(newest, name)
        tried += 1
    step30 = baby.checkpoints / "step-00000030"  # a checkpoint folder holding only a model.pt
    step30.mkdir()
    (step30 / "model.pt").write_bytes(data)
    (newest / "model.pt").write_bytes(data)  # and one beside real files: never looked at
    assert ckpt.load_latest(baby.checkpoints).step == 20
    for target, load in (
        (baby.tokenizer, lambda: T.load_tokenizer(baby.tokenizer)),
        (baby.config, lambda: BabyRecord.load(baby)),
    ):
        backup = target.read_bytes()
        target.write_bytes(data)
        with pytest.raises(SoulError) as e:
            load()
        assert "damaged" in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(SoulError):
            revive(baby)
        code, _, err = run(capsys, "chat", "--max-tokens", "2", "hi")
        assert code == 2 and "damaged" in one_line(err)
        target.write_bytes(backup)
        tried += 1
    for step in (10, 20):  # every checkpoint poisoned: refused, with what to do
        for name in CHECKPOINT_FILES:
            (paths_step(baby, step) / name).write_bytes(data)
    code, _, err = run(capsys, "chat", "--max-tokens", "2", "hi")
    assert code == 2 and "no usable checkpoint" in one_line(err) and "move that folder aside" in err
    assert tried == 5
    assert not marker.exists()


def paths_step(paths: BabyPaths, step: int) -> Path:
    return paths.checkpoints / f"step-{step:08d}"


FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "marshal", "joblib"}


def unsafe_calls(source: str) -> list[str]:
    """What in this source could unpickle or evaluate: imports, eval/exec, torch.load, allow_pickle."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {m}" for m in mods if m.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("eval", "exec", "__import__"):
                found.append(f"{f.id}(")
            if isinstance(f, ast.Attribute) and f.attr == "load" and ast.unparse(f.value).startswith("torch"):
                found.append(f"{ast.unparse(f)}(")
            unpickling = isinstance(f, ast.Attribute) and f.attr in ("loads", "load", "Unpickler")
            if unpickling and ast.unparse(f.value) in FORBIDDEN_MODULES:
                found.append(f"{ast.unparse(f)}(")
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and not kw.value.value
                ):
                    found.append("allow_pickle=True")
        elif isinstance(node, ast.Name | ast.Attribute) and "pickle" in ast.unparse(node).lower():
            found.append(ast.unparse(node))
    return found


def test_the_scanner_finds_what_it_looks_for() -> None:
    bad = "import pickle\nimport torch\neval('1')\nexec('x')\ntorch.load(f)\nnp.load(f, allow_pickle=True)\n"
    assert unsafe_calls(bad) == ["import pickle", "eval(", "exec(", "torch.load(", "allow_pickle=True"]
    assert unsafe_calls("model.eval()\nlib.load(x)\n'''never pickle'''\n") == []


def test_no_product_module_can_unpickle_or_evaluate() -> None:
    files = [p for pkg in ("brain", "school", "soul", "babyterm") for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 20
    offences = {str(p.relative_to(ROOT)): unsafe_calls(p.read_text(encoding="utf-8")) for p in files}
    assert {k: v for k, v in offences.items() if v} == {}


# -- damaged files ---------------------------------------------------------------------------------


def truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def flip_data_bit(p: Path) -> None:
    """Flip one bit of a weight: the file still parses, so only the checksum can tell."""
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x01
    p.write_bytes(bytes(data))
    assert safetensors_load(bytes(data))  # still a perfectly good-looking safetensors file


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (lambda d: truncate(d / "model.safetensors"), "model.safetensors is"),
    "zero-length": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors is 0 bytes"),
    "bit-flipped": (lambda d: flip_data_bit(d / "model.safetensors"), "model.safetensors checksum mismatch"),
    "invalid state": (
        lambda d: ((d / "state.json").write_text('{"step": 20,'), reseal(d, "state.json")),
        "unreadable",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_newest_checkpoint_falls_back_everywhere(baby: BabyPaths, capsys, damage: str) -> None:
    harm, reason = DAMAGE[damage]
    harm(paths_step(baby, 20))
    revived = revive(baby)
    assert (
        revived.step == 10 and reason in revived.warnings[0] and "using step-00000010" in revived.warnings[0]
    )
    code, out, err = run(capsys, "chat", "--max-tokens", "3", "--seed", "1", "hello")
    assert code == 0 and out.strip()
    assert "step-00000020 is damaged" in one_line(err)
    harm(paths_step(baby, 10))  # no good checkpoint left: refused, with what to do
    code, _, err = run(capsys, "chat", "--max-tokens", "3", "hello")
    line = one_line(err)
    assert code == 2 and "no usable checkpoint" in line and "move that folder aside to start afresh" in line


def test_wrong_shape_newest_falls_back_with_expect(baby: BabyPaths, capsys) -> None:
    save(baby, 30, tiny_model(dim=48, n_heads=2))  # whole and checksummed, for another brain
    model = tiny_model()
    found = ckpt.load_latest(baby.checkpoints, expect=ckpt.tensor_shapes(model))
    assert found is not None and found.step == 20
    assert found.warnings == [
        "checkpoint step-00000030 is damaged (does not fit this brain: tensor tok_embeddings.weight has "
        "shape (300, 48), the brain's is (300, 32)); using step-00000020"
    ]
    ckpt.load_model_tensors(model, found.model)  # what was chosen does fit
    with pytest.raises(SoulError, match="does not fit this brain") as e:  # without expect: one line
        ckpt.load_model_tensors(model, ckpt.load_latest(baby.checkpoints).model)
    assert "\n" not in str(e.value)
    code, _, err = run(capsys, "chat", "--max-tokens", "2", "hi")
    assert code in (0, 2) and "does not fit this brain" in one_line(err)  # never a traceback
    for step in (10, 20):
        shutil.rmtree(paths_step(baby, step))
    with pytest.raises(SoulError, match=r"no usable checkpoint .*does not fit this brain"):
        ckpt.load_latest(baby.checkpoints, expect=ckpt.tensor_shapes(model))


def test_revive_falls_back_from_a_wrong_shape_checkpoint(baby: BabyPaths) -> None:
    save(baby, 30, tiny_model(dim=48, n_heads=2))
    revived = revive(baby)
    assert revived.step == 20 and "does not fit this brain" in revived.warnings[0]


def test_validate_marks_a_checkpoint_unusable(baby: BabyPaths) -> None:
    def needs_tokens_seen(c: ckpt.Checkpoint) -> None:
        if c.step == 20:
            c.state["tokens_seen"]  # a state from another version: KeyError

    found = ckpt.load_latest(baby.checkpoints, validate=needs_tokens_seen)
    assert found.step == 10 and "tokens_seen" in found.warnings[0]


@pytest.mark.parametrize(
    ("target", "content", "words"),
    [
        ("config.json", b"", "damaged config.json"),
        ("config.json", b'{"brain": {"brain": "transformer", "dim"', "damaged config.json"),
        ("config.json", b"\xff\xfe\x00garbage", "damaged config.json"),
        ("tokenizer.json", b"", "tokenizer"),
        ("tokenizer.json", b'{"version": "1.0", "model": {"type": "BPE"', "tokenizer"),
    ],
)
def test_damaged_record_or_tokenizer_is_one_line(
    baby: BabyPaths, capsys, target: str, content, words
) -> None:
    (baby.root / target).write_bytes(content)
    code, _, err = run(capsys, "chat", "--max-tokens", "2", "hi")
    assert code == 2 and words in one_line(err)
    code, _, err = run(capsys, "train", "--steps", "1", "--threads", "1")
    assert code == 2 and words in one_line(err)


def test_a_tokenizer_that_does_not_match_the_weights(baby: BabyPaths, capsys) -> None:
    other = T.train_tokenizer([topics[k] for k in sorted(topics)[:12]], VOCAB - 20)
    T.save_tokenizer(other, baby.tokenizer)
    code, _, err = run(capsys, "chat", "--max-tokens", "2", "hi")
    assert code == 2 and "tokenizer.json does not match" in one_line(err)
    code, _, err = run(capsys, "train", "--steps", "1", "--threads", "1")
    line = one_line(err)
    assert code == 2 and "tokenizer.json has 280 tokens but the brain expects 300" in line
    assert len(ckpt.list_checkpoints(baby.checkpoints)) == 2  # nothing was trained or saved over it
