"""The baby's BPE tokenizer: Hugging Face `tokenizers`, laid out so it exports to llama2.c exactly.

Ids: 0 `<unk>`, 1 `<s>` (BOS, starts every document), 2 `</s>`, 3+b the byte `<0xBB>` for every
byte b, then the learned pieces in the order the trainer learned them. Spaces are `▁` inside
pieces; a `▁` is prepended to every encoded text (llama2.c's dummy prefix) and stripped again by
the decoder. No token is an *added* token, so no text the user writes (not even a literal
"<s>" or "<0x41>") ever turns into a special or byte id: ids match llama2.c's `run.c` encoder.

Round trip: `decode(encode(s)) == s` for every string without a literal `▁` (U+2581), which the
normalizer cannot tell from a space and decodes as " ".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from soul.atomic import write_text_atomic
from soul.paths import SoulError

if TYPE_CHECKING:  # torch only where a tensor is made: school.library, and so the CLI, load without it
    import torch

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = ("<unk>", "<s>", "</s>")
BYTE_PIECES = tuple(f"<0x{b:02X}>" for b in range(256))
N_RESERVED = len(SPECIALS) + len(BYTE_PIECES)  # 259: the first learned piece's id
MIN_VOCAB = N_RESERVED + 8
SPACE = "▁"
_SURROGATES = re.compile("[\ud800-\udfff]")

# Training only ("words-v2" in a baby's record): cut the normalized text into words, as
# SentencePiece does, so no learned piece crosses a whitespace boundary and digits stay apart:
#   a run of ▁ then non-space non-digit characters  (▁To, ▁▁▁▁return, OMEO:)
#   a run of ▁ alone, one digit, a run of newlines, a run of other whitespace (tabs, NBSP, ...).
# Whether two neighbouring characters are cut apart depends on those two alone, and no piece holds
# a cut, so no merge can join across one: encoding whole text with no pre-tokenizer (what llama2.c's
# run.c does) gives the ids it would give word by word. The final tokenizer keeps no pre-tokenizer.
# Indentation (▁▁▁▁) and blank lines (\n\n) still merge; the first version let a word take the
# newlines and digits after it (`OMEO:\n`), which fitted the text and not the language.
_TRAIN_WORDS = pre_tokenizers.Split(
    Regex(f"{SPACE}*[^{SPACE}\\s\\d]+|{SPACE}+|\\d|\n+|[^\\S\n]+"), behavior="isolated"
)


def _normalizer(prepend: bool = True) -> normalizers.Normalizer:
    steps = [normalizers.Replace(" ", SPACE)]
    return normalizers.Sequence([normalizers.Prepend(SPACE), *steps] if prepend else steps)


def _decoder(strip_first_space: bool = True) -> decoders.Decoder:
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    return decoders.Sequence([*steps, decoders.Strip(" ", 1, 0)] if strip_first_space else steps)


_CONTINUATION_DECODER = _decoder(strip_first_space=False)


def assemble(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = None
    tok.decoder = _decoder()
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4200) -> Tokenizer:
    """Learn `vocab_size - 259` pieces (fewer if the text is short) on top of the reserved ids.

    Characters outside the 1000 most frequent (or fewer at a small vocab) are left to byte fallback.
    """
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB}, got {vocab_size}")
    learned = vocab_size - N_RESERVED
    scratch = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    scratch.normalizer = _normalizer()
    scratch.pre_tokenizer = _TRAIN_WORDS
    trainer = trainers.BpeTrainer(
        vocab_size=len(SPECIALS) + learned,
        special_tokens=list(SPECIALS),
        # at a small vocab, leave at least half the learned ids for merges
        limit_alphabet=min(1000, max(learned // 2, 1)),
        initial_alphabet=[SPACE],  # run.c needs a " " piece, whatever the text
        show_progress=False,
    )
    scratch.train_from_iterator(texts, trainer)
    model = json.loads(scratch.to_str())["model"]
    trained = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    return assemble(*_renumber([p for p, i in trained if i >= len(SPECIALS)], model["merges"]))


def _renumber(pieces: list[str], merges: list[list[str]]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Put the reserved ids first, then the learned pieces in order.

    A learned piece spelled like a reserved one (the text held a literal "<s>" or "<0x41>") is dropped
    with its merge, and so is every merge built on it: kept, it would collide with the reserved name,
    and the decoder would turn the text "<0x41>" into "A".
    """
    vocab = {p: i for i, p in enumerate(SPECIALS + BYTE_PIECES)}
    produced = {a + b for a, b in merges}
    for piece in pieces:  # the alphabet: single characters, never reserved names
        if piece not in produced and piece not in vocab:
            vocab[piece] = len(vocab)
    kept: list[tuple[str, str]] = []
    for a, b in merges:
        if a + b not in vocab and a in vocab and b in vocab:
            vocab[a + b] = len(vocab)
            kept.append((a, b))
    return vocab, kept


def check_layout(tok: Tokenizer) -> None:
    """Raise ValueError unless `tok` has the id layout and byte fallback that llama2.c expects."""
    for i, piece in enumerate(SPECIALS + BYTE_PIECES):
        if tok.token_to_id(piece) != i:
            raise ValueError(f"piece {piece!r} is not id {i}")
    if tok.token_to_id(SPACE) is None:
        raise ValueError("no piece for a space")
    model = json.loads(tok.to_str())["model"]
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        raise ValueError("not a byte-fallback BPE model")


def merges(tok: Tokenizer) -> list[tuple[str, str]]:
    """The BPE merges, in the order they apply (tokenizers writes each as "a b" or as [a, b])."""
    model = json.loads(tok.to_str())["model"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def merge_ranks(tok: Tokenizer) -> dict[str, int]:
    """Each merged piece's rank: the index of the first merge that makes it."""
    rank: dict[str, int] = {}
    for r, (a, b) in enumerate(merges(tok)):
        rank.setdefault(a + b, r)
    return rank


def save_tokenizer(tok: Tokenizer, path: Path) -> None:
    write_text_atomic(Path(path), tok.to_str())


def load_tokenizer(path: Path) -> Tokenizer:
    """Read a saved tokenizer; a missing or damaged file raises SoulError with one line."""
    path = Path(path)
    try:
        tok = Tokenizer.from_str(path.read_text(encoding="utf-8"))
        check_layout(tok)
    except FileNotFoundError:
        raise SoulError(f"tokenizer {path} is missing") from None
    except Exception as e:  # tokenizers raises plain Exception on bad JSON
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SoulError(f"tokenizer {path} is damaged: {detail}") from None
    # the file's own normalizer/decoder are ours already; set them again so a hand-edited file
    # cannot change how text is cut
    tok.normalizer, tok.pre_tokenizer, tok.decoder = _normalizer(), None, _decoder()
    return tok


def scrub(text: str) -> str:
    """`text` with each lone surrogate (an undecodable byte from a terminal) as U+FFFD: valid UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


def encode(tok: Tokenizer, text: str) -> list[int]:
    """Ids of `text` with the dummy-prefix ▁ but no BOS/EOS (lone surrogates encode as U+FFFD)."""
    return tok.encode(scrub(text), add_special_tokens=False).ids


def encode_prompt(tok: Tokenizer, text: str, bos: bool = True) -> list[int]:
    """Ids to generate after: `<s>` then `encode(text)`, as training documents begin and as run.c and
    the hf export's tokenizer encode a prompt. `bos=False` for babies recorded without that
    convention (their record's `bos_prompt`)."""
    return [BOS_ID] * bos + encode(tok, text)


def decode(tok: Tokenizer, ids: Sequence[int], *, continuation: bool = False) -> str:
    """Text of `ids`; special ids (0-2) are left out.

    `continuation=True` keeps a leading space, for ids that continue earlier text (a guess after
    its prompt); otherwise the dummy-prefix space is stripped, as `encode` added it.
    """
    ids = [int(i) for i in ids if int(i) >= len(SPECIALS)]
    if continuation:
        return _CONTINUATION_DECODER.decode([tok.id_to_token(i) for i in ids])
    return tok.decode(ids)


def continuation_tokenizer(tok: Tokenizer) -> Tokenizer:
    """A copy of `tok` that prepends no ▁: for text that continues earlier text (a later piece)."""
    body = Tokenizer.from_str(tok.to_str())
    body.normalizer = _normalizer(prepend=False)
    return body


def split_pieces(text: str, size: int) -> Iterator[str]:
    """Cut long text into pieces of about `size` characters that encode, one after another, to the
    tokens of the whole: the first with `tok` and the rest with `continuation_tokenizer(tok)`.

    A cut goes just before a space that follows a non-space, where no learned piece can cross (no
    piece has a ▁ after another character), and the later piece keeps that space to become its ▁.
    Text with no space near the cut (e.g. CJK) is cut anywhere, which is exact up to one merge.
    """
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind(" ", start + size // 2, end)
        while cut > start + 1 and text[cut - 1] == " ":
            cut -= 1
        cut = end if cut <= start else cut
        yield text[start:cut]
        start = cut
    yield text[start:]


def token_byte_lengths(tok: Tokenizer) -> torch.Tensor:
    """(V,) int64: UTF-8 bytes each id stands for in decoded text, for bits per byte.

    ▁ counts as the one byte of a space, a byte piece as 1, specials as 0. Over `encode(text)` the
    sum is `len(text.encode()) + 1` for non-empty text: the +1 is the prepended dummy-prefix space.
    """
    import torch

    n = tok.get_vocab_size()
    out = torch.zeros(n, dtype=torch.int64)
    out[len(SPECIALS) : N_RESERVED] = 1
    for i in range(N_RESERVED, n):
        out[i] = len(tok.id_to_token(i).replace(SPACE, " ").encode("utf-8"))
    return out
