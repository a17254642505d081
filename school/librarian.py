"""The librarian: reads the user's library, keeps the baby's tokenizer and encoded corpus, deals batches.

The corpus is a stream of documents, each `<s> text </s>`: BOS first because llama2.c starts every
prompt with it (and stops generating at the next one), EOS last because the chat ends a reply on it.

Validation is text the baby never learns from (the "tail" split, nanoGPT's): a folder of at least
`MIN_HELD_DOCS` documents holds out whole documents, about `val_fraction` of its text, picked by a
hash of their names (adding a document moves few others); a smaller library holds out the last
`val_fraction` of every document's tokens. With a separate validation text (`val_text`) the whole
library is learned from. Babies born before this split keep theirs ("interleave": every
`1/val_fraction`-th chunk of the stream, between training chunks of the same text). Tokens live on
disk as numpy memmaps under `paths.corpus`, rebuilt only when the library's content, the tokenizer,
the validation text or the split changes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from school import tokenizer as T
from school.library import Document, Library, LibraryError
from school.unmerge import merge_parents, unmerge
from soul.atomic import append_line, write_atomic, write_json_atomic, write_text_atomic
from soul.paths import BabyPaths

Progress = Callable[[str, float, str], None]  # (task, fraction done, detail)
Log = Callable[[str], None]

__all__ = ["Document", "Librarian", "Library", "LibraryError", "Manifest"]

CACHE_VERSION = 1
CHUNK = 1024  # tokens per split chunk, less on corpora too small for two validation chunks
# Long documents are encoded in pieces of about PIECE_CHARS characters, BATCH_CHARS per
# encode_batch call (one progress report each). BPE without a pre-tokenizer works on a whole piece
# at once: 16K-character pieces encode 2.5x as fast as 256K ones, and a 512K batch peaks at
# ~70 MB where a 2M one took ~180 MB (the library's own blocks add a few MB).
PIECE_CHARS = 1 << 14
BATCH_CHARS = 1 << 19
DEAL_TOKENS = 1 << 20  # tokens read at a time when dealing the stream out to train and val
SPLITS = ("interleave", "tail")  # interleave: main 92febe8's split, kept for the babies born with it
MIN_HELD_DOCS = 10  # fewer documents than this: hold out the tail of each instead of whole ones
TRAIN_CHARS = 32 << 20  # the tokenizer learns from at most this much text, sampled across documents
USER, SCRIBE = "user", "scribe"  # the two pools of extra text: the user's words and the scribe's
SCRIBE_MAX_SHARE = 0.001
"""The scribe's lines are at most this share of training rows (the syllabus may say otherwise);
cautious, as benchmarks/scribe_cost.py could not yet resolve a cost of 0.01 bits/byte (README)."""


@dataclass
class Manifest:
    """What the corpus cache holds; written last, so a cache without one is never trusted."""

    library: str  # the library's fingerprint
    tokenizer: str  # sha256 of tokenizer.json
    dtype: str
    chunk: int
    val_every: int
    train_tokens: int
    val_tokens: int
    text_bytes: int
    version: int = CACHE_VERSION
    split: str = "interleave"  # absent from caches written before the tail split
    val_source: str = ""  # fingerprint of the separate validation text, "" for none

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def check_size(self, block_size: int) -> None:
        """Validation must hold two windows of a block, training one, or the library is too small."""
        need = 2 * (block_size + 1)
        if self.val_source and self.val_tokens < need:
            raise LibraryError(
                f"the validation text is too small: {self.val_tokens:,} tokens, "
                f"and a block of {block_size} needs at least {need:,}"
            )
        if self.val_tokens < need or self.train_tokens < block_size + 1:
            total = self.train_tokens + self.val_tokens
            want = need * self.val_every
            kb = want * self.text_bytes / max(1, total) / 1000
            raise LibraryError(
                f"the library is too small: {total:,} tokens from {self.text_bytes:,} bytes of text, "
                f"and a block of {block_size} needs about {want:,} tokens (~{kb:,.0f} KB of text)"
            )


def _encode_stream(
    lib: Library, tok: Tokenizer, dtype: np.dtype, out: Path, progress: Progress
) -> tuple[int, list[int]]:
    """Write every document as `<s> ids </s>` to `out`; returns the tokens in all and per document."""
    body = T.continuation_tokenizer(tok)
    texts: list[str] = []
    ends: list[tuple[bool, bool]] = []  # (first piece of a document, last piece)
    lengths: list[int] = []
    done = total = pending = 0

    def flush(f: Any) -> None:
        nonlocal total, pending
        for enc, (first, last) in zip(body.encode_batch_fast(texts), ends, strict=True):
            ids = np.asarray([T.BOS_ID] * first + enc.ids + [T.EOS_ID] * last, dtype)
            f.write(ids.tobytes())
            total += len(ids)
            if first:
                lengths.append(0)
            lengths[-1] += len(ids)
        progress("encoding", min(0.99, done / max(1, lib.n_chars)), f"{total:,} tokens")  # 1.0: split done
        texts.clear()
        ends.clear()
        pending = 0

    with open(out, "wb") as f:
        for piece, first, last in lib.stream(PIECE_CHARS):
            # a first piece's leading space is the dummy prefix: `body` prepends none
            texts.append(" " + piece if first else piece)
            ends.append((first, last))
            done += len(piece)
            pending += len(piece)
            if pending >= BATCH_CHARS:
                flush(f)
        if texts:
            flush(f)
    return total, lengths


def _deal(stream: Path, dtype: np.dtype, chunk: int, val_every: int, want_val: bool, out: Path) -> None:
    """Copy one side's chunks (train or val) out of the token stream, whole periods at a time.

    Plain reads rather than a memmap: mapped pages of a large stream would count as the process's
    memory (RSS) until the kernel chose to drop them.
    """
    period = chunk * val_every
    group = period * max(1, DEAL_TOKENS // period)  # whole periods, so chunk i of a group is i overall
    with open(stream, "rb") as src, open(out, "wb") as f:
        while len(block := np.fromfile(src, dtype, count=group)):
            n = math.ceil(len(block) / chunk)
            keep = np.flatnonzero((np.arange(n) % val_every == val_every - 1) == want_val)
            f.write(b"".join(block[i * chunk : (i + 1) * chunk].tobytes() for i in keep))


def held_out_documents(sizes: list[tuple[str, int]], fraction: float) -> set[int] | None:
    """Indices of the whole documents to hold out, about `fraction` of the characters; None: too few.

    Documents are taken in the order of a hash of their names, skipping any that would overshoot
    1.5x the share; if that cannot reach half the share, the caller holds out tails instead.
    """
    total = sum(n for _, n in sizes)
    if len(sizes) < MIN_HELD_DOCS or total == 0:
        return None
    want = fraction * total
    order = sorted(range(len(sizes)), key=lambda i: hashlib.sha256(sizes[i][0].encode("utf-8")).digest())
    held: set[int] = set()
    chars = 0
    for i in order:
        if chars >= want:
            break
        if chars + sizes[i][1] <= 1.5 * want:
            held.add(i)
            chars += sizes[i][1]
    return held if chars >= 0.5 * want else None


def _copy_range(src: Any, dtype: np.dtype, start: int, stop: int, dst: Any) -> None:
    """Copy tokens [start, stop) of the stream `src` to `dst`, `DEAL_TOKENS` at a time."""
    src.seek(start * dtype.itemsize)
    while start < stop:
        n = min(DEAL_TOKENS, stop - start)
        dst.write(np.fromfile(src, dtype, count=n).tobytes())
        start += n


def tail_cuts(lengths: list[int], held: set[int] | None, fraction: float) -> list[tuple[int, int, int]]:
    """(start, cut, end) in the stream for every document: [start, cut) is learned, [cut, end) held out.

    A held document is all held out; with `held` None, each document's last `fraction` of tokens
    (at least one, its `</s>`) is.
    """
    out, start = [], 0
    for i, n in enumerate(lengths):
        if held is not None:
            cut = start if i in held else start + n
        else:
            cut = start + n - max(1, math.floor(n * fraction))
        out.append((start, cut, start + n))
        start += n
    return out


def _deal_tail(
    stream: Path, dtype: np.dtype, cuts: list[tuple[int, int, int]], want_val: bool, out: Path
) -> None:
    """Copy one side (learned or held-out) of every document out of the token stream."""
    with open(stream, "rb") as src, open(out, "wb") as f:
        for start, cut, end in cuts:
            _copy_range(src, dtype, cut, end, f) if want_val else _copy_range(src, dtype, start, cut, f)


def _windows(data: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(data[starts[:, None] + np.arange(n)], dtype=np.int64)


def _read_within(inner: Path, outer: Path) -> bool:
    """Whether reading `outer` as a library reads `inner` too (hidden folders are skipped)."""
    if inner == outer:
        return True
    if outer not in inner.parents:
        return False
    return not any(part.startswith(".") for part in inner.relative_to(outer).parts)


def _check_apart(paths: BabyPaths, library: str | Path | None, val_text: str | Path | None) -> None:
    """Refuse what would make the scores lie: a library holding babyterm's own home (it would learn
    its checkpoints and logs) or a validation text inside the library (then it is not held out)."""
    if library is None:
        return
    lib = Path(library).expanduser().resolve()
    if _read_within(paths.home.expanduser().resolve(), lib):
        raise LibraryError(f"the library {lib} holds babyterm's own home: name a folder of your writing")
    if val_text is not None:
        val = Path(val_text).expanduser().resolve()
        if _read_within(val, lib) or _read_within(lib, val):
            raise LibraryError(
                f"the validation text {val} is part of the library {lib}, so its score would not be held "
                "out; leave --val-text out (the library's tail is held out) or name a text apart"
            )


class Librarian:
    """The tokenizer and encoded corpus of one baby, and the extra text it picks up as it learns."""

    def __init__(self, paths: BabyPaths, tokenizer: Tokenizer, manifest: Manifest, log: Log) -> None:
        self.paths, self.tokenizer, self.manifest = paths, tokenizer, manifest
        self.vocab_size = tokenizer.get_vocab_size()
        self.token_bytes = T.token_byte_lengths(tokenizer)  # (V,) for bits per byte
        d, m = paths.corpus, manifest
        self.train = np.memmap(d / "train.bin", m.dtype, "r", shape=(m.train_tokens,))
        self.val = np.memmap(d / "val.bin", m.dtype, "r", shape=(m.val_tokens,))
        pieces = [tokenizer.id_to_token(i) for i in range(self.vocab_size)]
        self._word_start = np.array([p.startswith(T.SPACE) for p in pieces])
        self._extra: dict[str, list[np.ndarray]] = {USER: [], SCRIBE: []}
        self._extra_ids = {USER: np.zeros(0, np.int64), SCRIBE: np.zeros(0, np.int64)}
        self.scribe_max_share = SCRIBE_MAX_SHARE
        """The most of the training tokens the scribe's lines may be (the tutor sets the syllabus's)."""
        self.bpe_dropout = 0.0
        """Chance a training token is read as its merge's two pieces (the tutor sets the syllabus's)."""
        self._load_extra(log)

    @classmethod
    def prepare(
        cls,
        paths: BabyPaths,
        library: str | Path | None,
        vocab_size: int = 4200,
        progress: Progress | None = None,
        log: Log | None = None,
        val_fraction: float = 0.1,
        block_size: int = 256,
        split: str = "tail",
        val_text: str | Path | None = None,
    ) -> Librarian:
        """Open the baby's library (None: Python's docs): load or train its tokenizer, encode (cached).

        A baby keeps its tokenizer for life: an existing `paths.tokenizer` wins over `vocab_size`. A
        new one is saved only after its corpus passed the size check (validation must hold two
        windows of `block_size`), so a library too small to learn from leaves no tokenizer behind.
        `split` is one of SPLITS (the baby's record says which); `val_text`, a file or folder, is
        scored instead of a held-out part, and the whole library is learned from.
        """
        if not 0 < val_fraction <= 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5], got {val_fraction}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if vocab_size < T.MIN_VOCAB and not paths.tokenizer.exists():
            raise LibraryError(f"a vocabulary of {vocab_size} is too small: use at least {T.MIN_VOCAB}")
        progress = progress or (lambda task, done, detail: None)
        log = log or (lambda message: None)
        _check_apart(paths, library, val_text)
        progress("reading", 0.0, str(library or "Python's built-in docs"))
        lib = Library.open(library, log)
        progress("reading", 1.0, f"{lib.n_documents:,} documents, {lib.n_bytes / 1e6:.1f} MB")
        val_lib = None if val_text is None else Library.open(val_text, log, what="validation text")
        fresh = not paths.tokenizer.exists()
        if fresh:
            progress("tokenizer", 0.0, f"learning {vocab_size:,} tokens")
            tok = T.train_tokenizer(lib.sample_texts(TRAIN_CHARS), vocab_size)
            tok_text = tok.to_str()
            progress("tokenizer", 1.0, f"{tok.get_vocab_size():,} tokens")
        else:
            tok = T.load_tokenizer(paths.tokenizer)
            tok_text = paths.tokenizer.read_text(encoding="utf-8")
        tok_hash = hashlib.sha256(tok_text.encode("utf-8")).hexdigest()
        val_every = max(2, round(1 / val_fraction))
        want = Manifest(lib.fingerprint, tok_hash, "", 0, val_every, 0, 0, 0, split=split)
        want.val_source = "" if val_lib is None else val_lib.fingerprint
        manifest = Manifest.read(paths.corpus / "manifest.json")
        if manifest is None or not _cache_matches(paths, manifest, want):
            manifest = _encode(paths, lib, tok, want, val_lib, progress)
            write_json_atomic(paths.corpus / "manifest.json", dataclasses.asdict(manifest))
        manifest.check_size(block_size)
        if fresh:
            write_text_atomic(paths.tokenizer, tok_text)
        return cls(paths, tok, manifest, log)

    # -- text -------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Ids of `text`: dummy-prefix ▁, no BOS/EOS."""
        return T.encode(self.tokenizer, text)

    def decode(self, ids: Any, continuation: bool = False) -> str:
        """Text of `ids` without specials; `continuation=True` keeps a leading space (text that follows)."""
        return T.decode(self.tokenizer, ids, continuation=continuation)

    def add_text(self, text: str, source: str) -> None:
        """Learn from `text` too (a scribe line, a chat correction); kept in extra.jsonl for life."""
        text = T.scrub(text)  # a lone surrogate could not be written to extra.jsonl
        if not text.strip():
            return
        line = json.dumps({"time": time.time(), "source": source, "text": text}, ensure_ascii=False)
        append_line(self.paths.extra_text, line)
        self._keep(text, source)

    def _keep(self, text: str, source: str) -> None:
        pool = SCRIBE if source == SCRIBE else USER  # corrections, steering: the user's own words
        # the scribe's lines are one running commentary, not a stream of tiny documents
        ids = self.encode(text + "\n") if pool == SCRIBE else [T.BOS_ID, *self.encode(text), T.EOS_ID]
        self._extra[pool].append(np.asarray(ids, np.int64))
        self._extra_ids[pool] = np.concatenate(self._extra[pool])

    def _load_extra(self, log: Log) -> None:
        if not self.paths.extra_text.exists():
            return
        with open(self.paths.extra_text, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                    text, source = record["text"], record.get("source", USER)
                except (ValueError, KeyError, TypeError, AttributeError):  # a line cut short by a crash
                    log(f"skipped line {n} of {self.paths.extra_text.name}: not a text record")
                    continue
                if isinstance(text, str) and text.strip():
                    self._keep(text, source if isinstance(source, str) else USER)

    @property
    def extra_tokens(self) -> int:
        """Tokens of extra text, the user's and the scribe's."""
        return self.user_tokens + self.scribe_tokens

    @property
    def user_tokens(self) -> int:
        return len(self._extra_ids[USER])

    @property
    def scribe_tokens(self) -> int:
        return len(self._extra_ids[SCRIBE])

    def scribe_share(self) -> float:
        """The share of training rows the scribe's lines get: what it has written, as a part of all
        there is to read, and never more than `scribe_max_share`."""
        written = self.scribe_tokens
        return min(self.scribe_max_share, written / max(1, written + len(self.train)))

    @property
    def validation_id(self) -> str:
        """Names the held-out text scores are measured on: the same library, split and tokenizer."""
        m = self.manifest
        key = f"{m.library}|{m.val_source}|{m.tokenizer}|{m.split}|{m.val_every}|{m.val_tokens}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    # -- batches ----------------------------------------------------------------------------------

    @functools.cached_property
    def _merge_parents(self) -> np.ndarray:
        """What BPE-dropout splits each token into (school/unmerge.py), read once from the tokenizer."""
        return merge_parents(self.tokenizer)

    def batch(
        self, batch_size: int, block_size: int, generator: torch.Generator, extra_fraction: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows (x, y), int64 (B, T), y = x shifted by one; all randomness from `generator`.

        Once the user's extra text (corrections, steering) holds a whole window, each row comes from
        it with probability `extra_fraction`: it is tiny next to the corpus and would otherwise
        hardly ever be read. The scribe's lines get `scribe_share()` of the rows: floor(share × B)
        of them, one more with the remaining probability, so no batch holds more than its ceiling.
        With `bpe_dropout`, some tokens of every row are then read as the pieces their merge joined.
        """
        n = block_size + 1
        if len(self.train) < n:
            raise LibraryError(f"the training text ({len(self.train)} tokens) is shorter than a block")
        starts = torch.randint(len(self.train) - n + 1, (batch_size,), generator=generator).numpy()
        rows = _windows(self.train, starts, n)
        user, scribe = self._extra_ids[USER], self._extra_ids[SCRIBE]
        taken = np.zeros(batch_size, bool)
        if extra_fraction > 0 and len(user) >= n:
            taken = (torch.rand(batch_size, generator=generator) < extra_fraction).numpy()
            starts = torch.randint(len(user) - n + 1, (batch_size,), generator=generator).numpy()
            rows[taken] = _windows(user, starts[taken], n)
        if len(scribe) >= n:  # the same draws whatever the share, so a share of 0 changes only rows
            want = self.scribe_share() * batch_size
            k = int(want) + int(float(torch.rand(1, generator=generator)) < want - int(want))
            starts = torch.randint(len(scribe) - n + 1, (batch_size,), generator=generator).numpy()
            free = np.flatnonzero(~taken)[:k]  # rows the user's text left (every row is random)
            rows[free] = _windows(scribe, starts[: len(free)], n)
        if self.bpe_dropout > 0:
            rows = unmerge(rows, self._merge_parents, self.bpe_dropout, generator)
        t = torch.from_numpy(rows)
        return t[:, :-1], t[:, 1:]

    def val_batches(
        self, batch_size: int, block_size: int, n_batches: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Non-overlapping validation windows of `block_size` (shorter if val is), the same every call.

        Window i's targets are held-out tokens i*T+1 .. (i+1)*T, so each is scored once, with the
        context a window gives; the remainder shorter than a window is not scored. More windows than
        `batch_size * n_batches`: that many, evenly spaced among them.
        """
        return _even_windows(self.val, batch_size, block_size, n_batches)

    def held_in_batches(
        self, batch_size: int, block_size: int, n_batches: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Windows of the training text chosen as val_batches chooses them, the same every call: what
        the baby learns from, scored in the same eval pass, so train and held-out compare fairly."""
        return _even_windows(self.train, batch_size, block_size, n_batches)

    @staticmethod
    def scored_bytes(token_bytes: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The module's `scored_bytes`: what the tutor divides validation nats by."""
        return scored_bytes(token_bytes, x, y)

    def sample_snippet(
        self, length: int, generator: torch.Generator, truth_length: int = 16
    ) -> tuple[list[int], list[int]]:
        """A random training prompt of `length` tokens, starting at a word, and its true continuation."""
        n = length + truth_length
        if len(self.train) < n:
            raise LibraryError(f"the training text ({len(self.train)} tokens) is shorter than a snippet")
        last = len(self.train) - n
        start = int(torch.randint(last + 1, (1,), generator=generator))
        words = self._word_start[self.train[start : min(start + 32, last + 1)]]
        start += int(words.argmax())  # the first word start within reach (argmax of all-False is 0)
        ids = self.train[start : start + n].astype(np.int64).tolist()
        return ids[:length], ids[length:]


def _even_windows(
    data: np.ndarray, batch_size: int, block_size: int, n_batches: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows of `data` (at most batch_size * n_batches, evenly spaced), as (x, y)."""
    width = min(block_size, len(data) - 1)
    count = (len(data) - 1) // width
    keep = np.linspace(0, count - 1, min(count, batch_size * n_batches)).round().astype(np.int64)
    rows = torch.from_numpy(_windows(data, np.unique(keep) * width, width + 1))
    return [(r[:, :-1], r[:, 1:]) for r in rows.split(batch_size)]


def scored_bytes(token_bytes: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """UTF-8 bytes of the text that targets `y` stand for (a 0-d tensor, on their device).

    The first token of a document (after `<s>` in `x`) carries the dummy-prefix ▁, which is not in
    the text: one byte less for each.
    """
    return token_bytes[y].sum() - (x == T.BOS_ID).sum()


def _cache_matches(paths: BabyPaths, m: Manifest, want: Manifest) -> bool:
    key = ("version", "library", "tokenizer", "val_every", "split", "val_source")
    if any(getattr(m, k) != getattr(want, k) for k in key):
        return False
    try:
        size = np.dtype(m.dtype).itemsize
    except TypeError:
        return False
    files = ((paths.corpus / "train.bin", m.train_tokens), (paths.corpus / "val.bin", m.val_tokens))
    return all(f.is_file() and f.stat().st_size == n * size for f, n in files)


def _encode(
    paths: BabyPaths,
    lib: Library,
    tok: Tokenizer,
    want: Manifest,
    val_lib: Library | None,
    progress: Progress,
) -> Manifest:
    """Encode the library to a temp stream, then deal it out to train.bin and val.bin as `want` says."""
    dtype = np.dtype(np.uint16 if tok.get_vocab_size() <= 1 << 16 else np.uint32)
    paths.corpus.mkdir(parents=True, exist_ok=True)
    (paths.corpus / "manifest.json").unlink(missing_ok=True)  # the old cache stops being valid now
    stream = paths.corpus / "stream.tmp"
    train, val = paths.corpus / "train.bin", paths.corpus / "val.bin"
    t0 = time.perf_counter()
    try:
        total, lengths = _encode_stream(lib, tok, dtype, stream, progress)
        # the stream's read is the one that counts: the library's fingerprint follows it
        m = dataclasses.replace(want, library=lib.fingerprint, dtype=dtype.name, text_bytes=lib.n_bytes)
        if val_lib is not None:
            counted: list[int] = []
            write_atomic(
                val, lambda tmp: counted.append(_encode_stream(val_lib, tok, dtype, tmp, progress)[0])
            )
            m.train_tokens, m.val_tokens, m.val_source = total, counted[0], val_lib.fingerprint
            write_atomic(train, lambda tmp: os.replace(stream, tmp))  # the whole stream is learned
        elif want.split == "tail":
            cuts = tail_cuts(lengths, held_out_documents(lib.sizes(), 1 / want.val_every), 1 / want.val_every)
            m.val_tokens = sum(end - cut for _, cut, end in cuts)
            m.train_tokens = total - m.val_tokens
            m.chunk = 0
            if m.val_tokens and m.train_tokens:
                for path, side in ((train, False), (val, True)):
                    write_atomic(path, lambda tmp, s=side: _deal_tail(stream, dtype, cuts, s, tmp))
        else:
            val_every = want.val_every
            chunk = min(CHUNK, max(1, total // (2 * val_every)))
            n_chunks = math.ceil(total / chunk)
            is_val = np.arange(n_chunks) % val_every == val_every - 1
            lengths_ = np.minimum(chunk, total - np.arange(n_chunks) * chunk)
            m.chunk, m.val_tokens = chunk, int(lengths_[is_val].sum())
            m.train_tokens = total - m.val_tokens
            if m.val_tokens and m.train_tokens:
                for path, side in ((train, False), (val, True)):
                    write_atomic(path, lambda tmp, s=side: _deal(stream, dtype, chunk, val_every, s, tmp))
    finally:
        stream.unlink(missing_ok=True)
    progress("encoding", 1.0, f"{total:,} tokens in {time.perf_counter() - t0:.1f}s")
    return m
