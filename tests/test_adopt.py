"""Adoption: an export comes back as a baby that talks and learns; broken files are refused in one line."""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest
import torch

from babyterm.cli import main
from school.exports import export
from school.exports.adopt import adopt
from school.exports.llama2c import read_tokenizer_bin, tokenizer_from_bin, write_tokenizer_bin
from school.exports.runc import runc_encode
from school.options import TrainOptions
from school.revive import Revived, revive
from school.syllabus import SYLLABI
from school.tokenizer import encode
from school.tutor import Tutor
from soul.paths import SoulError, baby_paths
from soul.record import BabyRecord
from tests.baby_factory import make_baby

PROBE = [1, 40, 200, 7, 299, 259, 3, 120, 5, 60]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shakespeare_text: str) -> dict[str, Path]:
    """Two babies (tied, untied), a babyllm, and their exports."""
    root = tmp_path_factory.mktemp("adopt")
    library = root / "library.txt"
    library.write_text(shakespeare_text[:60_000], encoding="utf-8")
    home = root / "home"
    make_baby(home, library, "tied")
    make_baby(home, library, "untied", tie_embeddings=False)
    make_baby(home, library, "old", brain="babyllm")
    out = {"home": home, "library": library}
    for name, fmt in (("tied", "llama2c"), ("untied", "llama2c"), ("untied", "hf"), ("old", "safetensors")):
        out[f"{name}-{fmt}"] = root / f"{name}-{fmt}"
        export(baby_paths(name, home), fmt, root / f"{name}-{fmt}")
    return out


def _same_baby(a: Revived, b: Revived) -> None:
    with torch.no_grad():
        torch.testing.assert_close(b.model(torch.tensor([PROBE]))[0], a.model(torch.tensor([PROBE]))[0])
    text = "ROMEO: héllo, ☃ world"
    assert encode(b.tokenizer, text) == encode(a.tokenizer, text)


@pytest.mark.parametrize(
    "name,fmt", [("tied", "llama2c"), ("untied", "llama2c"), ("untied", "hf"), ("old", "safetensors")]
)
def test_an_adopted_export_is_the_same_baby(world, tmp_path: Path, name: str, fmt: str) -> None:
    home = tmp_path / "home"
    done = adopt(world[f"{name}-{fmt}"], f"{name}-again", home)
    assert done.fmt == fmt and done.paths.name == f"{name}-again"
    record = BabyRecord.load(done.paths)
    assert record.preset == "adopted" and record.library is None
    _same_baby(revive(baby_paths(name, world["home"])), revive(done.paths))


def test_model_bin_path_with_tokenizer_beside_it_and_default_name(world, tmp_path: Path) -> None:
    folder = tmp_path / "dl"
    folder.mkdir()
    shutil.copy(world["tied-llama2c"] / "model.bin", folder / "stories.bin")
    shutil.copy(world["tied-llama2c"] / "tokenizer.bin", folder / "tokenizer.bin")
    assert adopt(folder / "stories.bin", None, tmp_path / "home").paths.name == "stories"
    assert adopt(folder, "again", tmp_path / "home").fmt == "llama2c"  # the one .bin in the folder


def test_adopted_baby_chats_and_keeps_learning(world, tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    adopt(world["untied-hf"], "kid", home)
    code = main(
        ["chat", "--baby", "kid", "--home", str(home), "--temperature", "0", "--max-tokens", "5", "ROMEO"]
    )
    assert code == 0 and capsys.readouterr().out.strip()

    torch.set_num_threads(1)
    options = TrainOptions(baby="kid", home=str(home), library=str(world["library"]), threads=1)
    tutor = Tutor(options, syllabus_overrides=dict(batch_size=4, eval_batches=1))
    tutor.prepare()
    assert tutor.step == 0
    # a fine-tuning rate: a tenth of the from-scratch preset's, so the adopted knowledge survives
    assert tutor.syllabus.lr == pytest.approx(SYLLABI["tiny"].lr / 10)
    taught = Revived(None, tutor.librarian.tokenizer, tutor.model, 0, [], "")  # type: ignore[arg-type]
    _same_baby(revive(baby_paths("untied", world["home"])), taught)
    losses = [tutor.train_step()["loss"] for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    tutor.save("manual")
    assert revive(baby_paths("kid", home)).step == 3


def test_tokenizer_bin_becomes_an_equivalent_bpe(world, shakespeare_text: str) -> None:
    pieces, scores, _ = read_tokenizer_bin(world["tied-llama2c"] / "tokenizer.bin", 300)
    rng = random.Random(1)
    texts = [*shakespeare_text[180_000:186_000].splitlines(), "", " ", "héllo ☃", "a  b", "<s>x", "<0x41>"]
    texts += ["".join(rng.choice("ab e\nthé'") for _ in range(rng.randint(1, 30))) for _ in range(200)]
    tok = tokenizer_from_bin(pieces, scores)
    assert [t for t in texts if [1, *encode(tok, t)] != runc_encode(t, pieces, scores)] == []
    # distinct scores in another order than our merges (as a sentencepiece-made file): still run.c's ids.
    # (Equal scores are a known gap: run.c merges the leftmost, a BPE the earlier merge.)
    order = [-float(i) for i in range(len(scores) - 259)]
    rng.shuffle(order)
    shuffled = [*scores[:259], *order]
    tok = tokenizer_from_bin(pieces, shuffled)
    assert [t for t in texts if [1, *encode(tok, t)] != runc_encode(t, pieces, shuffled)] == []


# -- refusals -----------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _header(path: Path, **fields: int) -> None:
    data = bytearray(path.read_bytes())
    names = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")
    values = list(struct.unpack("<7i", data[:28]))
    for k, v in fields.items():
        values[names.index(k)] = v
    data[:28] = struct.pack("<7i", *values)
    path.write_bytes(bytes(data))


BREAKAGES = {  # what is done to an exported llama2c folder -> words of the refusal
    "missing path": "not found",
    "missing tokenizer": "tokenizer.bin not found",
    "short model": "bytes, but its header",
    "long model": "bytes, but its header",
    "zero heads": "malformed header",
    "odd heads": "malformed header",
    "tiny file": "too short",
    "short tokenizer": "ends after",
    "empty folder": "nothing to adopt",
}


def _break(folder: Path, breakage: str) -> Path:
    """Damage a copy of an exported llama2c folder; returns the path to adopt."""
    model, tokenizer = folder / "model.bin", folder / "tokenizer.bin"
    if breakage == "missing path":
        return folder / "nope"
    if breakage == "missing tokenizer":
        tokenizer.unlink()
    elif breakage == "short model":
        model.write_bytes(model.read_bytes()[:-4])
    elif breakage == "long model":
        model.write_bytes(model.read_bytes() + b"\0" * 8)
    elif breakage == "zero heads":
        _header(model, n_heads=0)
    elif breakage == "odd heads":
        _header(model, n_heads=3)
    elif breakage == "tiny file":
        model.write_bytes(b"\1\2")
    elif breakage == "short tokenizer":
        tokenizer.write_bytes(tokenizer.read_bytes()[:-3])
    elif breakage == "empty folder":
        model.unlink()
        tokenizer.unlink()
    return folder


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_broken_llama2c_files_are_refused(world, tmp_path: Path, breakage: str) -> None:
    target = _break(_copy(world["tied-llama2c"], tmp_path / "files"), breakage)
    with pytest.raises(SoulError, match=BREAKAGES[breakage]):
        adopt(target, "kid", tmp_path / "home")
    assert not (tmp_path / "home" / "babies" / "kid").exists()


def test_broken_tokenizers_and_folders_are_refused(world, tmp_path: Path) -> None:
    pieces, scores, _ = read_tokenizer_bin(world["tied-llama2c"] / "tokenizer.bin", 300)
    bad = _copy(world["tied-llama2c"], tmp_path / "bad")
    write_tokenizer_bin(bad / "tokenizer.bin", [b"<oops>", *pieces[1:]], scores)
    with pytest.raises(SoulError, match="tokenizer piece 0"):
        adopt(bad, "kid", tmp_path / "home")
    hf = _copy(world["untied-hf"], tmp_path / "hf")
    (hf / "model.safetensors").unlink()
    with pytest.raises(SoulError, match=r"model\.safetensors not found"):
        adopt(hf, "kid", tmp_path / "home")
    (hf / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(SoulError, match="'gpt2' model; babyterm adopts Llama"):
        adopt(hf, "kid", tmp_path / "home")
    (hf / "config.json").write_text("{}")  # a config that says nothing is not "a None model"
    with pytest.raises(SoulError, match="names no model_type; babyterm adopts Llama"):
        adopt(hf, "kid", tmp_path / "home")
    assert not (tmp_path / "home" / "babies" / "kid").exists()


def test_cli_adopt_and_its_refusals(world, tmp_path: Path, capsys) -> None:
    home = str(tmp_path / "home")
    assert main(["adopt", str(world["tied-llama2c"]), "--baby", "kid", "--home", home]) == 0
    assert "babyterm chat --baby kid" in capsys.readouterr().out
    for argv in (
        ["adopt", str(world["tied-llama2c"]), "--baby", "kid"],  # that name is taken now
        ["adopt", str(tmp_path / "nothing-here")],
        ["adopt", str(world["tied-llama2c"]), "--baby", "../escape"],
    ):
        code = main([*argv, "--home", home])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
