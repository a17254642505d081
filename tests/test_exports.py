"""Exports: llama2.c files read back bit for bit and run as run.c would; transformers loads the hf folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from babyterm.cli import main
from brain import config_from_dict
from brain.generate import Sampling, generate
from brain.transformer import rope_tables
from school.exports import export
from school.exports.llama import stacked_weights, to_adjacent, to_halfsplit
from school.exports.llama2c import read_model_bin, read_tokenizer_bin, tokenizer_bin_pieces
from school.exports.runc import runc_decode_piece, runc_encode, runc_generate_greedy, runc_text
from school.revive import Revived, revive
from school.tokenizer import SPACE, assemble, encode, encode_prompt
from soul.checkpoint import model_tensors
from soul.paths import BabyPaths, SoulError, baby_paths
from tests.baby_factory import make_baby

TRANSFORMERS = ["tied", "untied"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, shakespeare_text: str) -> Path:
    root = tmp_path_factory.mktemp("exports")
    library = root / "library.txt"
    library.write_text(shakespeare_text[:60_000], encoding="utf-8")
    make_baby(root / "home", library, "tied")
    make_baby(root / "home", library, "untied", tie_embeddings=False)
    make_baby(root / "home", library, "old", brain="babyllm")
    return root / "home"


@pytest.fixture(scope="module")
def babies(home: Path) -> dict[str, Revived]:
    return {name: revive(baby_paths(name, home)) for name in ("tied", "untied", "old")}


@pytest.fixture(scope="module")
def texts(shakespeare_text: str) -> list[str]:
    """Edge cases, unicode, held-out Shakespeare and random strings over a small alphabet."""
    held_out = shakespeare_text[150_000:162_000]
    rng = random.Random(0)
    out = ["", " ", "  ", "a", "\n", "Hello world", " lead", "trail ", "a  b\n\nc", "\ttab\r\n"]
    out += ["héllo ☃ 日本語 🎉 ñ", "<s> not bos </s>", "<0x41> <unk>", "x\x01y\x7f", "ROMEO:\nWhat?"]
    out += held_out.splitlines()[:150]
    out += [held_out[i : i + rng.randint(1, 300)] for i in range(0, len(held_out), 400)]
    out += ["".join(rng.choice("ab e\nthé'") for _ in range(rng.randint(1, 40))) for _ in range(200)]
    return out


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids]))[0][0]


# -- llama2c ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_llama2c_model_bin_reads_back_identically(babies, tmp_path: Path, name: str) -> None:
    model = babies[name].model
    cfg = model.config
    files = export(babies[name], "llama2c", tmp_path / "out")
    assert [f.name for f in files] == ["model.bin", "tokenizer.bin"]
    header, w = read_model_bin(tmp_path / "out" / "model.bin")
    assert header == dict(
        dim=32, hidden_dim=cfg.hidden_dim, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, seq_len=32,
        shared_classifier=name == "tied",
    )  # fmt: skip
    raw = (tmp_path / "out" / "model.bin").read_bytes()
    assert np.frombuffer(raw[:28], "<i4")[5] == (300 if name == "tied" else -300)
    # offsets counted by hand from run.c, independently of the reader: embedding first, then the
    # two attention norms, then layer 0's wq; the classifier (untied) or RoPE sin table (tied) last
    floats = torch.from_numpy(np.frombuffer(raw[28:], "<f4").copy())
    assert torch.equal(floats[: 300 * 32], model.tok_embeddings.weight.detach().flatten())
    wq0 = model.layers[0].attention.wqkv.weight.detach()[:32].flatten()
    assert torch.equal(floats[300 * 32 + 2 * 32 :][: 32 * 32], wq0)
    last = model.output.weight.detach() if name == "untied" else rope_tables(8, 32, 10000.0)[1]
    assert torch.equal(floats[-last.numel() :], last.flatten())
    # the fused matrices, split by hand: wqkv rows are [q (4 heads), k (2), v (2)], w13 rows [w1, w3]
    for i, block in enumerate(model.layers):
        q, k, v = block.attention.wqkv.weight.detach().split([32, 16, 16])
        w1, w3 = block.feed_forward.w13.weight.detach().chunk(2)
        for kind, t in dict(wq=q, wk=k, wv=v, w1=w1, w3=w3, wo=block.attention.wo.weight).items():
            assert torch.equal(torch.from_numpy(w[kind][i]), t.detach()), kind
    assert torch.equal(torch.from_numpy(w["tok_embeddings"]), model.tok_embeddings.weight.detach())
    assert ("wcls" in w) == (name == "untied")
    if name == "untied":
        assert torch.equal(torch.from_numpy(w["wcls"]), model.output.weight.detach())
    cos, sin = rope_tables(8, 32, 10000.0)
    assert torch.equal(torch.from_numpy(w["freq_cis_real"]), cos)
    assert torch.equal(torch.from_numpy(w["freq_cis_imag"]), sin)
    ours = stacked_weights(model)
    for kind, t in ours.items():
        assert torch.equal(torch.from_numpy(w["wcls" if kind == "output" else kind]), t), kind


def test_tokenizer_bin_layout(babies, tmp_path: Path) -> None:
    tok = babies["tied"].tokenizer
    export(babies["tied"], "llama2c", tmp_path / "out")
    pieces, scores, max_len = read_tokenizer_bin(tmp_path / "out" / "tokenizer.bin", 300)
    assert pieces[:4] == [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x00>"] and pieces[258] == b"<0xFF>"
    assert max_len == max(len(p) for p in pieces)
    assert b" " in pieces and not any(SPACE.encode() in p for p in pieces)
    merges = json.loads(tok.to_str())["model"]["merges"]
    for rank, (a, b) in enumerate(merges):
        made = (a + b).replace(SPACE, " ").encode()
        assert scores[pieces.index(made)] == -rank
    assert all(s == -1e10 for s in scores[:259])
    with pytest.raises(SoulError, match="ends after"):
        read_tokenizer_bin(tmp_path / "out" / "tokenizer.bin", 301)


def test_runc_encode_matches_our_tokenizer(babies, texts, tmp_path: Path) -> None:
    tok = babies["tied"].tokenizer
    export(babies["tied"], "llama2c", tmp_path / "out")
    pieces, scores, _ = read_tokenizer_bin(tmp_path / "out" / "tokenizer.bin", 300)
    differ = [t for t in texts if runc_encode(t, pieces, scores) != [1, *encode(tok, t)]]
    assert differ == []
    assert runc_encode("", pieces, scores) == [1]


def test_reserved_names_never_merge_in_runc() -> None:
    """Pieces "<0x4" + "1>" spell the byte token's name: run.c must not merge them into id 68."""
    chars = ["▁", "<", "0", "x", "4", "1", ">", "\n", "s"]
    merges = [("<", "0"), ("<0", "x"), ("<0x", "4"), ("1", ">"), ("\n", "<"), ("\n<", "s"), ("\n<s", ">")]
    merges += [("\n<s>", "\n")]  # a learned piece spelled like run.c's BOS piece
    vocab = {p: i for i, p in enumerate(["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))])}
    for p in chars + [a + b for a, b in merges]:
        vocab.setdefault(p, len(vocab))
    tok = assemble(vocab, merges)
    pieces, scores = tokenizer_bin_pieces(tok)
    for text in ("<0x41>", "a<0x41>b", "<s>", "<0x4"):
        assert runc_encode(text, pieces, scores) == [1, *encode(tok, text)], text
    # the learned "\n<s>\n" would collide with BOS's piece: it became unreachable (a known gap)
    assert len(set(pieces)) == len(pieces)
    assert runc_encode("\n<s>\n", pieces, scores) == [1, vocab["▁"], vocab["\n<s>"], vocab["\n"]]


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_runc_reimplementation_generates_what_our_brain_does(babies, tmp_path: Path, name: str) -> None:
    baby = babies[name]
    export(baby, "llama2c", tmp_path / "out")
    header, w = read_model_bin(tmp_path / "out" / "model.bin")
    pieces, scores, _ = read_tokenizer_bin(tmp_path / "out" / "tokenizer.bin", 300)
    prompt = runc_encode("ROMEO: what", pieces, scores)
    ids, logits = runc_generate_greedy(w, header, prompt, 0)
    theirs = torch.from_numpy(np.stack(logits))
    ours = _logits(baby.model, ids[: len(logits)])
    assert theirs.std() > 1.0  # bold weights: a layout mistake could not hide in the tolerance
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    n = len(ids) - len(prompt)
    greedy = [c.id for c in generate(baby.model, prompt, Sampling(temperature=0, max_tokens=n))]
    assert ids[len(prompt) :] == greedy[:n]
    assert runc_text(prompt, pieces) == b"ROMEO: what"


def test_runc_prints_like_run_c() -> None:
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n", *(b"<0x%02X>" % b for b in range(256)), b" hi", b"!"]
    hi, bang = 259, 260
    assert runc_decode_piece(1, hi, pieces) == b"hi"  # the space after BOS is stripped
    assert runc_decode_piece(bang, hi, pieces) == b" hi"
    assert runc_decode_piece(hi, 3 + 0x41, pieces) == b"A"
    assert runc_decode_piece(hi, 3 + 0x0A, pieces) == b"\n"
    assert runc_decode_piece(hi, 3 + 0x01, pieces) == b""  # not printable: dropped
    assert runc_decode_piece(hi, 3 + 0xC3, pieces) == b""  # UTF-8 bytes vanish in run.c
    assert runc_decode_piece(hi, 2, pieces) == b"\n</s>\n"
    assert runc_text([1, hi, bang, 3 + 0xC3, 3 + 0xA9], pieces) == b"hi!"


# -- hf -----------------------------------------------------------------------------------------


def test_q_and_k_rows_move_to_rotate_half() -> None:
    w = torch.arange(2 * 8 * 3, dtype=torch.float32).view(16, 3)  # 2 heads of size 8
    half = to_halfsplit(w, 2)
    for h in range(2):
        for j in range(4):
            for a in range(2):
                assert torch.equal(half[h * 8 + a * 4 + j], w[h * 8 + 2 * j + a])
    assert torch.equal(to_adjacent(half, 2), w)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_transformers_loads_the_hf_export(babies, texts, tmp_path: Path, name: str) -> None:
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test extra")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    baby = babies[name]
    export(baby, "hf", tmp_path / "hf")
    names = sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert names == sorted(
        [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ]
    )
    model = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "hf"))
    assert model.config.tie_word_embeddings == (name == "tied")

    plain = [t for t in texts if "<s>" not in t and "</s>" not in t and "<unk>" not in t]
    for t in plain:
        ours = encode(baby.tokenizer, t)
        assert tokenizer(t, add_special_tokens=False)["input_ids"] == ours, t
        assert tokenizer(t)["input_ids"] == [1, *ours], t
    prompt = tokenizer("ROMEO: what")["input_ids"]
    assert tokenizer.decode(prompt, skip_special_tokens=True) == "ROMEO: what"

    ids = prompt + encode(baby.tokenizer, " say you, my lord?")[:10]
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0]
    ours = _logits(baby.model, ids)
    assert ours.std() > 1.0
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)

    n = 32 - len(prompt)
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None)
    greedy = [c.id for c in generate(baby.model, prompt, Sampling(temperature=0, max_tokens=n))]
    assert out[0, len(prompt) :].tolist() == greedy


def test_bos_convention_agrees_across_babyterm_transformers_and_runc(babies, tmp_path: Path) -> None:
    """One <s> convention: our prompt, transformers' defaults and run.c give the same greedy tokens."""
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test extra")
    transformers.logging.set_verbosity_error()
    baby = babies["tied"]
    export(baby, "hf", tmp_path / "hf")
    export(baby, "llama2c", tmp_path / "c")
    model = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "hf"))
    header, w = read_model_bin(tmp_path / "c" / "model.bin")
    pieces, scores, _ = read_tokenizer_bin(tmp_path / "c" / "tokenizer.bin", 300)
    for text in ("ROMEO:", "To be, or not", "What say you"):
        prompt = encode_prompt(baby.tokenizer, text)
        assert prompt[0] == 1 and prompt[1:] == encode(baby.tokenizer, text)
        hf_prompt = hf_tok(text, return_tensors="pt")
        assert hf_prompt["input_ids"][0].tolist() == prompt == runc_encode(text, pieces, scores)
        n = 32 - len(prompt)
        ours = [c.id for c in generate(baby.model, prompt, Sampling(temperature=0, max_tokens=n))]
        theirs = model.generate(**hf_prompt, max_new_tokens=n, do_sample=False)[0, len(prompt) :].tolist()
        runc_ids, _ = runc_generate_greedy(w, header, prompt, 0)
        assert runc_ids[len(prompt) :][:n] == ours  # run.c stops only at <s> or the window's end
        # transformers' default generate stops after </s> (eos_token_id from the export's config)
        assert theirs == (ours[: ours.index(2) + 1] if 2 in ours else ours)
    assert encode_prompt(baby.tokenizer, "ROMEO:", bos=False) == encode(baby.tokenizer, "ROMEO:")


# -- safetensors and refusals -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tied", "old"])
def test_safetensors_export_holds_everything(babies, tmp_path: Path, name: str) -> None:
    baby = babies[name]
    export(baby, "safetensors", tmp_path / "st")
    tensors = load_file(tmp_path / "st" / "model.safetensors")
    expected = model_tensors(baby.model)
    assert tensors.keys() == expected.keys()
    assert all(torch.equal(tensors[k], expected[k]) for k in expected)
    assert config_from_dict(json.loads((tmp_path / "st" / "config.json").read_text())) == baby.model.config
    assert (tmp_path / "st" / "tokenizer.json").read_text() == baby.tokenizer.to_str()


@pytest.mark.parametrize("fmt", ["hf", "llama2c"])
def test_babyllm_exports_only_to_safetensors(babies, tmp_path: Path, fmt: str) -> None:
    with pytest.raises(SoulError, match="only the transformer brain"):
        export(babies["old"], fmt, tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_cli_export(capsys, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "llama2c", "--baby", "tied", "--home", str(home)]) == 0
    assert sorted(p.name for p in (tmp_path / "tied-llama2c").iterdir()) == ["model.bin", "tokenizer.bin"]
    assert "tied-llama2c" in capsys.readouterr().out
    for argv in (
        ["export", "--format", "llama2c", "--baby", "tied"],  # the folder is there now, not empty
        ["export", "--format", "hf", "--baby", "old", "--out", "x"],
        ["export", "--format", "hf", "--baby", "nobody"],
    ):
        code = main([*argv, "--home", str(home)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()


def test_export_from_paths_loads_the_newest_checkpoint(tmp_path: Path, home: Path, babies) -> None:
    export(BabyPaths(home, "tied"), "safetensors", tmp_path / "st")
    tensors = load_file(tmp_path / "st" / "model.safetensors")
    assert torch.equal(tensors["tok_embeddings.weight"], babies["tied"].model.tok_embeddings.weight)
