"""GGUF export: read back with gguf's reader, run from its tensors alone, tokenized as llama.cpp does."""

from __future__ import annotations

import re
from pathlib import Path
from pydoc_data.topics import topics

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf.quants import dequantize

from babyterm.cli import main
from school.exports import export
from school.framing import STOP, frame
from school.revive import Revived, revive
from school.tokenizer import BOS_ID, encode
from soul.paths import SoulError, baby_paths
from tests.baby_factory import make_baby

UNICODE = "Ünïcödé naïve café — “quotes” ‘single’ … ½ € ☃ 日本語のテキスト 🎉🐍 Ελληνικά Кириллица ñ\t\r\n"
TEXTS = [
    "",
    " ",
    "a",
    "Hello world",
    "  two  spaces\n\nand lines",
    UNICODE,
    "mixed: def f(x): return x ** 2  # ∑ x² ≠ ∞",
    "<s> not bos </s> <0x41> <unk>",
    "x\x01y\x7f",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gguf")
    library = root / "library.txt"
    docs = "\n\n".join(topics[k] for k in sorted(topics))[:50_000]
    library.write_text(docs + ("\n" + UNICODE) * 40, encoding="utf-8")
    make_baby(root / "home", library, "tied")
    make_baby(root / "home", library, "untied", tie_embeddings=False)
    make_baby(root / "home", library, "old", brain="babyllm")
    return root / "home"


@pytest.fixture(scope="module")
def babies(home: Path) -> dict[str, Revived]:
    return {name: revive(baby_paths(name, home)) for name in ("tied", "untied", "old")}


def _exported(baby: Revived, out: Path, quant: str = "f32") -> gguf.GGUFReader:
    files = export(baby, "gguf", out, quant)
    assert [f.name for f in files] == ["Modelfile", "baby.gguf"]
    return gguf.GGUFReader(out / "baby.gguf")


def _field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


# -- a llama forward from nothing but the file ---------------------------------------------------


def _weights(reader: gguf.GGUFReader) -> dict[str, torch.Tensor]:
    out = {}
    for t in reader.tensors:
        data = np.asarray(t.data)
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            data = dequantize(data, t.tensor_type)
        out[t.name] = torch.from_numpy(np.array(data, dtype=np.float32))
    return out


def _rope(x: torch.Tensor, base: float, n_rot: int) -> torch.Tensor:
    """llama.cpp's rope NORM on x (T, nh, hs): adjacent pairs (2j, 2j+1), angle pos * base^(-2j/n_rot)."""
    T = x.shape[0]
    inv = base ** (-torch.arange(0, n_rot, 2, dtype=torch.float64) / n_rot)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # (T, n_rot/2)
    cos, sin = ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def gguf_logits(reader: gguf.GGUFReader, ids: list[int]) -> torch.Tensor:
    """(T, V) logits of a plain llama built only from the GGUF's tensors and llama.* metadata."""
    w = _weights(reader)
    L = _field(reader, "llama.block_count")
    nh, nkv = _field(reader, "llama.attention.head_count"), _field(reader, "llama.attention.head_count_kv")
    eps = _field(reader, "llama.attention.layer_norm_rms_epsilon")
    base, n_rot = _field(reader, "llama.rope.freq_base"), _field(reader, "llama.rope.dimension_count")
    D = _field(reader, "llama.embedding_length")
    hs = D // nh

    def norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    x = w["token_embd.weight"][torch.tensor(ids)]  # (T, D)
    T = x.shape[0]
    for i in range(L):
        p = f"blk.{i}."
        h = norm(x, w[p + "attn_norm.weight"])
        q = _rope((h @ w[p + "attn_q.weight"].T).view(T, nh, hs), base, n_rot)
        k = _rope((h @ w[p + "attn_k.weight"].T).view(T, nkv, hs), base, n_rot)
        v = (h @ w[p + "attn_v.weight"].T).view(T, nkv, hs)
        k, v = (t.repeat_interleave(nh // nkv, dim=1) for t in (k, v))
        att = F.scaled_dot_product_attention(*(t.transpose(0, 1) for t in (q, k, v)), is_causal=True)
        x = x + att.transpose(0, 1).reshape(T, D) @ w[p + "attn_output.weight"].T
        h = norm(x, w[p + "ffn_norm.weight"])
        gate, up = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
        x = x + (F.silu(gate) * up) @ w[p + "ffn_down.weight"].T
    head = w.get("output.weight", w["token_embd.weight"])
    return norm(x, w["output_norm.weight"]) @ head.T


def _our_logits(baby: Revived, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return baby.model(torch.tensor([ids]))[0][0]


# -- llama.cpp's SPM tokenizer (llm_tokenizer_spm), ported -------------------------------------


def spm_encode(text: str, tokens: list[str], scores: list[float], types: list[int]) -> list[int]:
    """llama_tokenize(text, add_special=True, parse_special=False) for a "llama" vocab.

    BOS (add_bos_token), then: a " " prefix (add_space_prefix), spaces as ▁, one symbol per UTF-8
    character; the adjacent pair whose concatenation is a token merges, highest score first,
    leftmost on ties; a final symbol that is no token falls back to its bytes' <0xXX> tokens.
    """
    lookup = {t: i for i, t in enumerate(tokens)}
    out = [BOS_ID]
    if not text:
        return out
    symbols = list((" " + text).replace(" ", "▁"))
    while True:
        best = None
        for i in range(len(symbols) - 1):
            j = lookup.get(symbols[i] + symbols[i + 1])
            if j is not None and (best is None or scores[j] > best[0]):
                best = (scores[j], i)
        if best is None:
            break
        i = best[1]
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    for s in symbols:
        if s in lookup:
            out.append(lookup[s])
        else:
            out.extend(lookup[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
    return out


# -- the Modelfile's Go template, the subset it uses ----------------------------------------------


def render_go_template(template: str, messages: list[dict[str, str]]) -> str:
    """text/template for {{- range .Messages }}, {{ .Content }}, {{ if eq .Role "x" }}, {{ else }},
    {{ end }} and string constants; anything else fails the test."""
    parts = re.split(r"({{-?.*?-?}})", template)
    pos = 0

    def block(ctx: dict[str, str] | None, stop: tuple[str, ...]) -> tuple[str, str]:
        nonlocal pos
        text = ""
        while pos < len(parts):
            part = parts[pos]
            pos += 1
            if not part.startswith("{{"):
                text += part
                continue
            if part.startswith("{{-"):
                text = text.rstrip()
            action = part.strip("{}- ")
            if action in stop:
                return text, action
            if action == "range .Messages":
                start, body = pos, ""
                for m in messages:
                    pos = start
                    got, _ = block(m, ("end",))
                    body += got
                if not messages:
                    block(None, ("end",))
                text += body
            elif action == ".Content":
                text += ctx["content"] if ctx else ""
            elif m := re.fullmatch(r'if eq \.Role "(\w+)"', action):
                yes, how = block(ctx, ("else", "end"))
                no = block(ctx, ("end",))[0] if how == "else" else ""
                text += yes if ctx and ctx["role"] == m.group(1) else no
            elif re.fullmatch(r'"(?:[^"\\]|\\.)*"', action):
                text += action[1:-1].encode().decode("unicode_escape")
            else:
                raise AssertionError(f"template action outside the tested subset: {action!r}")
        return text, ""

    return block(None, ())[0]


# -- tests ----------------------------------------------------------------------------------------


def test_metadata_and_tokenizer_read_back(babies, tmp_path: Path) -> None:
    baby = babies["tied"]
    cfg, tok = baby.model.config, baby.tokenizer
    reader = _exported(baby, tmp_path / "out")
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "general.file_type") == gguf.LlamaFileType.ALL_F32
    assert _field(reader, "llama.context_length") == cfg.max_seq_len
    assert _field(reader, "llama.attention.head_count_kv") == cfg.n_kv_heads == 2
    assert _field(reader, "llama.feed_forward_length") == cfg.hidden_dim
    assert _field(reader, "tokenizer.ggml.model") == "llama"
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert tokens == [tok.id_to_token(i) for i in range(cfg.vocab_size)]
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and tokens[3 + 0x41] == "<0x41>"
    types = _field(reader, "tokenizer.ggml.token_type")
    T = gguf.TokenType
    assert types[:3] == [T.UNKNOWN, T.CONTROL, T.CONTROL]
    assert set(types[3:259]) == {T.BYTE} and set(types[259:]) == {T.NORMAL}
    assert _field(reader, "tokenizer.ggml.bos_token_id") == 1
    assert _field(reader, "tokenizer.ggml.eos_token_id") == 2
    assert _field(reader, "tokenizer.ggml.unknown_token_id") == 0
    assert _field(reader, "tokenizer.ggml.add_bos_token") is True
    assert _field(reader, "tokenizer.ggml.add_eos_token") is False
    assert len(_field(reader, "tokenizer.ggml.scores")) == cfg.vocab_size
    names = {t.name for t in reader.tensors}
    # tied: no output.weight, llama.cpp reuses token_embd
    assert "output.weight" not in names and "blk.1.ffn_gate.weight" in names


@pytest.mark.parametrize("name", ["tied", "untied"])
def test_f32_forward_from_the_gguf_matches_our_logits(babies, tmp_path: Path, name: str) -> None:
    baby = babies[name]
    reader = _exported(baby, tmp_path / "out")
    assert ("output.weight" in {t.name for t in reader.tensors}) == (name == "untied")
    ids = [BOS_ID, *encode(baby.tokenizer, "Hello world, " + UNICODE)][: baby.model.config.max_seq_len]
    ours, theirs = _our_logits(baby, ids), gguf_logits(reader, ids)
    assert ours.abs().max() > 1.0  # bold weights: a wrong layout cannot hide under the tolerance
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)


def test_q8_0_agrees_on_the_top_token(babies, tmp_path: Path) -> None:
    baby = babies["untied"]
    reader = _exported(baby, tmp_path / "out", "q8_0")
    assert _field(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert kinds["output_norm.weight"] == gguf.GGMLQuantizationType.F32
    export(baby, "gguf", tmp_path / "f32")
    sizes = [(tmp_path / d / "baby.gguf").stat().st_size for d in ("out", "f32")]
    assert sizes[0] < sizes[1] / 2
    ids = [BOS_ID, *encode(baby.tokenizer, "The quick brown fox")]
    ours, theirs = _our_logits(baby, ids), gguf_logits(reader, ids)
    assert not torch.equal(ours, theirs)  # it really is quantized
    assert torch.equal(theirs.argmax(-1), ours.argmax(-1))


def test_llama_cpp_tokenization_matches_ours(babies, tmp_path: Path) -> None:
    tok = babies["tied"].tokenizer
    reader = _exported(babies["tied"], tmp_path / "out")
    vocab = [_field(reader, f"tokenizer.ggml.{k}") for k in ("tokens", "scores", "token_type")]
    assert any(len(t.encode()) > 1 and not t.startswith("<0x") for t in vocab[0])  # multibyte pieces exist
    for text in TEXTS:
        ours = [BOS_ID, *encode(tok, text)]
        assert spm_encode(text, *vocab) == ours, text
    assert any(3 <= i < 259 for i in encode(tok, "日本語 🎉🐍"))  # byte fallback was exercised


def test_modelfile_says_what_framing_says(babies, tmp_path: Path) -> None:
    _exported(babies["tied"], tmp_path / "out")
    text = (tmp_path / "out" / "Modelfile").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "FROM ./baby.gguf" and (tmp_path / "out" / "baby.gguf").exists()
    assert "PARAMETER num_ctx 32" in lines and "PARAMETER temperature 0.8" in lines
    assert [ln for ln in lines if ln.startswith("PARAMETER stop")] == [
        'PARAMETER stop "\\n\\n"',
        'PARAMETER stop "</s>"',
    ]
    assert STOP == ("\n\n", "</s>")
    template = re.search(r'TEMPLATE """(.*?)"""', text, re.S).group(1)
    conversations = [
        [("user", "hi")],
        [("system", "Be kind."), ("user", "Hello there"), ("assistant", "Hi!"), ("user", "How are you?")],
        [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")],
    ]
    for conv in conversations:
        rendered = render_go_template(template, [{"role": r, "content": c} for r, c in conv])
        assert rendered == frame(conv)
    assert frame(conversations[0]) == "hi\n"


def test_the_ggufs_chat_template_frames_like_babyterm(babies, tmp_path: Path) -> None:
    jinja2 = pytest.importorskip("jinja2")
    reader = _exported(babies["tied"], tmp_path / "out")
    template = jinja2.Environment().from_string(_field(reader, "tokenizer.chat_template"))
    conv = [("system", "Be kind."), ("user", "Hello"), ("assistant", "Hi!"), ("user", "Why?")]
    messages = [{"role": r, "content": c} for r, c in conv]
    assert template.render(messages=messages, add_generation_prompt=True) == frame(conv)


def test_babyllm_is_refused_and_nothing_is_left(babies, tmp_path: Path) -> None:
    with pytest.raises(SoulError, match="only the transformer brain exports to gguf"):
        export(babies["old"], "gguf", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SoulError, match="--quant is for --format gguf"):
        export(babies["tied"], "hf", tmp_path / "out", "q8_0")


def test_cli_export_gguf(capsys, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["export", "--format", "gguf", "--baby", "tied", "--home", str(home), "--quant", "q8_0"]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "tied-gguf").iterdir()) == ["Modelfile", "tied.gguf"]
    out = capsys.readouterr().out
    assert f"ollama create tied -f {Path('tied-gguf') / 'Modelfile'}" in out
    assert (tmp_path / "tied-gguf" / "Modelfile").read_text().startswith("FROM ./tied.gguf\n")
    code = main(["export", "--format", "gguf", "--baby", "old", "--home", str(home), "--out", "x"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_greedy_text_from_llama_cpp_matches_ours(babies, tmp_path: Path) -> None:
    """Optional: only where llama-cpp-python is installed (it compiles for minutes; not in the extras)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from brain.generate import Sampling, generate

    baby = babies["tied"]
    export(baby, "gguf", tmp_path / "out")
    llm = llama_cpp.Llama(str(tmp_path / "out" / "baby.gguf"), n_ctx=32, verbose=False)
    prompt = "Hello"
    ids = [BOS_ID, *encode(baby.tokenizer, prompt)]
    assert llm.tokenize(prompt.encode(), add_bos=True, special=False) == ids
    ours = [c.id for c in generate(baby.model, ids, Sampling(temperature=0.0, max_tokens=12), None, None)]
    theirs = []
    for token in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
        if token == llm.token_eos() or len(theirs) == len(ours):
            break
        theirs.append(token)
    assert theirs == ours[: len(theirs)] and len(theirs) == len(ours)
