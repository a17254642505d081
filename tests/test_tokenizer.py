"""The BPE tokenizer: llama2.c id layout, byte fallback, exact round trips, bytes per token."""

from __future__ import annotations

import json
from pydoc_data.topics import topics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from school import tokenizer as T
from soul.paths import SoulError

torch.set_num_threads(1)

TRAIN_TEXT = "\n\n".join(topics[k] for k in sorted(topics)[:6])[:6000] + "\nhello world, hello baby.\n"

ROUND_TRIPS = [
    "",
    "a",
    " ",
    "   ",
    "  leading and trailing  ",
    "many     spaces\tand\ttabs",
    "lines\nand\n\nblank lines\n",
    "\r\nwindows\r\n",
    "emoji 😀👍🏽 and a family 👨‍👩‍👧",
    "CJK 日本語の文章 中文 한국어",
    "combining e\u0301 a\u0308 n\u0303 (not precomposed)",
    "controls \x00 \x01 \x07 \x1b[31m \x7f \x85 end",
    "literal <s> </s> <unk> <0x41> <0xFF> stay text",
    "\u00a0no-break\u2003em space\u200bzero width",
]


@pytest.fixture(scope="module")
def tok():
    return T.train_tokenizer([TRAIN_TEXT], vocab_size=400)


def test_id_layout_matches_llama2c(tok):
    assert tok.get_vocab_size() == 400
    T.check_layout(tok)
    assert [tok.id_to_token(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    for b in range(256):
        assert tok.token_to_id(f"<0x{b:02X}>") == 3 + b
    learned = [tok.id_to_token(i) for i in range(T.N_RESERVED, 400)]
    assert T.SPACE in learned  # run.c needs a " " piece
    assert not set(learned) & set(T.SPECIALS + T.BYTE_PIECES)
    assert not tok.get_added_tokens_decoder()  # nothing is matched in raw text before the model


def test_byte_fallback_for_unseen_characters(tok):
    # neither character is in the training text: each falls back to its UTF-8 bytes, id 3 + byte
    assert "€" not in TRAIN_TEXT and "𝄞" not in TRAIN_TEXT
    space = tok.token_to_id(T.SPACE)
    assert T.encode(tok, "€") == [space] + [3 + b for b in "€".encode()]
    assert T.encode(tok, "𝄞")[1:] == [3 + b for b in "𝄞".encode()]
    assert T.decode(tok, T.encode(tok, "€𝄞")) == "€𝄞"


def test_literal_special_and_byte_names_stay_text(tok):
    for text in ("<s>", "</s>", "<unk>", "<0x41>", "a<s>b</s>"):
        ids = T.encode(tok, text)
        assert not set(ids) & {T.UNK_ID, T.BOS_ID, T.EOS_ID}
        assert 3 + 0x41 not in ids  # "<0x41>" is six characters, not the byte "A"
        assert T.decode(tok, ids) == text


def test_text_full_of_reserved_names_trains_without_collisions():
    # on this text the trainer learns the pieces "<s>", "</s>" and "<0x41>": they must be dropped
    text = "".join(f"{a}<s>{b} {b}<0x41>{a} q</s>{a} " for a in "abcdefgh" for b in "ijklmnop")
    tok = T.train_tokenizer([text * 5], vocab_size=300)
    T.check_layout(tok)
    pieces = [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    assert len(pieces) == len(set(pieces))  # run.c looks pieces up by string: no duplicates
    ids = T.encode(tok, text)
    assert not set(ids) & {T.BOS_ID, T.EOS_ID, 3 + 0x41}
    assert T.decode(tok, ids) == text


def test_merges_compress_text(tok):
    assert len(T.encode(tok, TRAIN_TEXT)) < 0.6 * len(TRAIN_TEXT)


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_round_trip(tok, text):
    assert T.decode(tok, T.encode(tok, text)) == text


def test_literal_metaspace_decodes_as_space(tok):
    # documented gap: the normalizer writes spaces as ▁, so a ▁ in the text cannot come back as ▁
    assert T.decode(tok, T.encode(tok, "a▁b")) == "a b"


def test_special_ids_are_left_out_of_decoded_text(tok):
    ids = T.encode(tok, "hello")
    assert T.decode(tok, [T.BOS_ID, *ids, T.EOS_ID]) == "hello"


def test_continuation_decode_keeps_the_leading_space(tok):
    ids = T.encode(tok, "hello world")
    cut = next(i for i in range(1, len(ids)) if tok.id_to_token(ids[i]).startswith(T.SPACE))
    assert T.decode(tok, ids[:cut]) + T.decode(tok, ids[cut:], continuation=True) == "hello world"
    assert T.decode(tok, ids[cut:]) == T.decode(tok, ids[cut:], continuation=True).lstrip(" ")


def test_split_pieces_encode_like_the_whole(tok):
    text = TRAIN_TEXT + "  double  spaces and 日本語の文章にはスペースがない" * 20
    pieces = list(T.split_pieces(text, 300))
    assert "".join(pieces) == text and len(pieces) > 10
    body = T.continuation_tokenizer(tok)
    ids = T.encode(tok, pieces[0]) + [i for p in pieces[1:] for i in T.encode(body, p)]
    whole = T.encode(tok, text)
    # the CJK tail has no spaces and is cut anywhere: exact only up to the merges at those cuts
    n = len(T.encode(tok, TRAIN_TEXT))
    assert ids[:n] == whole[:n]
    assert T.decode(tok, ids) == text


def test_token_byte_lengths(tok):
    lengths = T.token_byte_lengths(tok)
    assert lengths.dtype == torch.int64 and lengths.shape == (400,)
    assert lengths[:3].tolist() == [0, 0, 0]
    assert set(lengths[3:259].tolist()) == {1}
    assert lengths[tok.token_to_id(T.SPACE)] == 1
    for text in ROUND_TRIPS:
        # +1: the dummy-prefix ▁ the normalizer puts in front of any non-empty text
        assert int(lengths[T.encode(tok, text)].sum()) == len(text.encode()) + (1 if text else 0)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters=[T.SPACE]), max_size=60))
def test_round_trip_property(tok, text):
    ids = T.encode(tok, text)
    assert T.decode(tok, ids) == text
    assert int(T.token_byte_lengths(tok)[ids].sum()) == len(text.encode()) + (1 if text else 0)


def test_save_and_load(tok, tmp_path):
    path = tmp_path / "deep" / "tokenizer.json"
    T.save_tokenizer(tok, path)
    loaded = T.load_tokenizer(path)
    assert loaded.to_str() == tok.to_str()
    assert T.encode(loaded, ROUND_TRIPS[8]) == T.encode(tok, ROUND_TRIPS[8])


def test_load_errors_are_one_line(tok, tmp_path):
    with pytest.raises(SoulError, match="missing"):
        T.load_tokenizer(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": ', encoding="utf-8")
    with pytest.raises(SoulError, match="damaged") as e:
        T.load_tokenizer(bad)
    assert "\n" not in str(e.value)
    # valid JSON, wrong layout: ids shifted by one
    spec = json.loads(tok.to_str())
    spec["model"]["vocab"] = {k: v + 1 for k, v in spec["model"]["vocab"].items()} | {"<pad>": 0}
    bad.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(SoulError, match="damaged"):
        T.load_tokenizer(bad)


def test_vocab_too_small_is_refused():
    with pytest.raises(ValueError):
        T.train_tokenizer(["text"], vocab_size=T.N_RESERVED)


# -- pieces that generalise ("words-v2") ------------------------------------------------------------

NUMBERS = "".join(f"ROMEO:\nIn {1990 + i} and {i * 37} times,\n\n\tthe 2nd of {i}00.\n" for i in range(60))


@pytest.fixture(scope="module")
def word_tok():
    """Trained on text full of digits, newlines and tabs next to words: tempting merges."""
    return T.train_tokenizer([TRAIN_TEXT, NUMBERS], vocab_size=500)


def test_learned_pieces_never_cross_a_whitespace_boundary_and_digits_stay_apart(word_tok):
    pieces = [word_tok.id_to_token(i) for i in range(T.N_RESERVED, word_tok.get_vocab_size())]
    assert len(pieces) > 100
    for piece in pieces:
        # each piece is one whole training word: the cuts at whitespace and digits never fall inside it
        assert [w for w, _ in T._TRAIN_WORDS.pre_tokenize_str(piece)] == [piece], repr(piece)
        assert T.SPACE not in piece.lstrip(T.SPACE) and "\n" not in piece.lstrip("\n")
        assert not any(c.isdigit() for c in piece) or len(piece) == 1
    assert "▁ROMEO:" in pieces or "ROMEO:" in pieces  # words still merge whole
    assert any(set(p) == {T.SPACE} and len(p) > 1 for p in pieces) or "\n\n" in pieces
    ids = T.encode(word_tok, "ROMEO:\nIn 1999")
    tokens = [word_tok.id_to_token(i) for i in ids]
    assert "\n" in tokens and [t for t in tokens if t.isdigit()] == ["1", "9", "9", "9"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab RMEO:12 90\n\t.the,\u00a0٣é", max_size=80))
def test_encoding_is_the_same_word_by_word(word_tok, text):
    """No pre-tokenizer (what run.c does) and one that cuts words give the same ids."""
    worded = T.Tokenizer.from_str(word_tok.to_str())
    worded.pre_tokenizer = T._TRAIN_WORDS
    assert T.encode(word_tok, text) == T.encode(worded, text)
    assert T.decode(word_tok, T.encode(word_tok, text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters=[T.SPACE]), max_size=60))
def test_word_pieces_round_trip_every_unicode_text(word_tok, text):
    assert T.decode(word_tok, T.encode(word_tok, text)) == text
