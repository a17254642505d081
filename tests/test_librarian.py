"""The librarian: reading a library, the cached encoded corpus, the split, and the batches it deals."""

from __future__ import annotations

import json
import math
import os
import shutil
from pydoc_data.topics import topics

import numpy as np
import pytest
import torch

from school import tokenizer as T
from school.librarian import Librarian, Library, LibraryError, held_out_documents
from soul.paths import BabyPaths

torch.set_num_threads(1)

VOCAB = 300
BLOCK = 32
TOPICS = sorted(topics)[:12]  # about 40 KB of text: enough for a split at block 32, fast at vocab 300


def write_library(root):
    """Pydoc topics as a small folder of text files, one of them two levels down."""
    for i, name in enumerate(TOPICS):
        folder = root / ("deep/er" if i == 0 else "sub" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    return root


def expected_stream(tok, lib):
    ids = []
    for doc in lib.documents():
        ids += [T.BOS_ID, *T.encode(tok, doc.text), T.EOS_ID]
    return np.asarray(ids)


@pytest.fixture(scope="module")
def baby(tmp_path_factory):
    """A prepared baby: (paths, library folder, librarian)."""
    root = write_library(tmp_path_factory.mktemp("library"))
    paths = BabyPaths(tmp_path_factory.mktemp("home"), "baby")
    return paths, root, Librarian.prepare(paths, root, VOCAB, block_size=BLOCK)


@pytest.fixture
def twin(baby, tmp_path):
    """A copy of the prepared baby that a test may change (prepare() finds the cache: fast)."""
    paths, root, _ = baby
    twin = BabyPaths(tmp_path, "twin")
    shutil.copytree(paths.root, twin.root)
    return twin, root


# -- reading a library ------------------------------------------------------------------------------


def test_reads_a_folder_recursively_and_skips_with_reasons(tmp_path):
    (tmp_path / "notes" / "old").mkdir(parents=True)
    (tmp_path / "a.md").write_text("# A\ntext\n", encoding="utf-8")
    (tmp_path / "notes" / "b.rst").write_bytes(b"\xef\xbb\xbfB with a BOM\r\nand CRLF\r\n")
    (tmp_path / "notes" / "old" / "README").write_text("no extension, still text", encoding="utf-8")
    (tmp_path / "notes" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))  # read as cp1252
    (tmp_path / "noise.txt").write_bytes(bytes(range(128, 256)) * 4)
    (tmp_path / "blank.txt").write_text("  \n\t\n", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path, tmp_path / "notes" / "loop")  # a symlinked folder pointing back up
    logged = []
    lib = Library.open(tmp_path, logged.append)
    docs = list(lib.documents())
    assert [d.name for d in docs] == ["a.md", "latin1.txt", "notes/b.rst", "notes/old/README"]
    assert docs[1].text == "café" and docs[2].text == "B with a BOM\nand CRLF\n"
    log = "\n".join(logged)
    for expected in (
        "notes/image.txt: binary",
        "reading latin1.txt as cp1252",
        "noise.txt: not UTF-8",
        "blank.txt: no text",
        ".git: hidden",
        ".hidden.txt: hidden",
        "notes/loop: folder already read",
    ):
        assert expected in log
    assert lib.n_documents == 4 and lib.n_bytes == sum(len(d.text.encode()) for d in docs)


def test_library_errors(tmp_path):
    with pytest.raises(LibraryError, match="not found"):
        Library.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="no files"):
        Library.open(tmp_path / "empty")
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "x.bin").write_bytes(b"\x00\x01\x02" * 10)
    (binary / "y.txt").write_text(" \n ", encoding="utf-8")
    with pytest.raises(LibraryError, match="no readable text") as e:
        Library.open(binary)
    assert "\n" not in str(e.value)


def test_one_file_is_a_library(tmp_path):
    f = tmp_path / "story.txt"
    f.write_text("Once upon a time.", encoding="utf-8")
    assert [(d.name, d.text) for d in Library.open(f).documents()] == [("story.txt", "Once upon a time.")]


def test_default_library_is_pythons_docs():
    lib = Library.open(None)
    docs = list(lib.documents())
    assert [d.name for d in docs] == sorted(k for k in topics if topics[k].strip())
    assert lib.n_documents > 50 and lib.n_bytes > 100_000
    assert Library.open(None).fingerprint == lib.fingerprint


def test_fingerprint_follows_names_and_contents(tmp_path):
    (tmp_path / "a.txt").write_text("one", encoding="utf-8")
    first = Library.open(tmp_path).fingerprint
    (tmp_path / "a.txt").write_text("two", encoding="utf-8")
    second = Library.open(tmp_path).fingerprint
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    assert len({first, second, Library.open(tmp_path).fingerprint}) == 3


# -- the encoded corpus -----------------------------------------------------------------------------


def test_prepare_builds_tokenizer_and_corpus(baby):
    paths, _, lb = baby
    assert lb.vocab_size == VOCAB and paths.tokenizer.exists()
    assert lb.train.dtype == np.uint16 and lb.token_bytes.shape == (VOCAB,)
    manifest = json.loads((paths.corpus / "manifest.json").read_text())
    assert manifest["train_tokens"] == len(lb.train) and manifest["val_tokens"] == len(lb.val)
    assert lb.decode(lb.encode("hello, world")) == "hello, world"


def document_streams(tok, lib):
    return [np.asarray([T.BOS_ID, *T.encode(tok, d.text), T.EOS_ID]) for d in lib.documents()]


def test_a_folder_holds_out_whole_documents_picked_by_name(baby):
    _, root, lb = baby
    lib = Library.open(root)
    docs = document_streams(lb.tokenizer, lib)
    held = held_out_documents(lib.sizes(), 0.1)
    assert held and held == held_out_documents(lib.sizes(), 0.1)  # deterministic
    share = sum(n for i, (_, n) in enumerate(lib.sizes()) if i in held) / lib.n_chars
    assert 0.05 <= share <= 0.15
    np.testing.assert_array_equal(lb.val, np.concatenate([d for i, d in enumerate(docs) if i in held]))
    np.testing.assert_array_equal(lb.train, np.concatenate([d for i, d in enumerate(docs) if i not in held]))
    assert lb.manifest.split == "tail" and len(lb.val) >= 2 * (BLOCK + 1)
    # the pick follows names, not the order documents come in
    assert held_out_documents([(n, c) for n, c in reversed(lib.sizes())], 0.1) == {
        len(docs) - 1 - i for i in held
    }


def test_a_small_library_holds_out_the_tail_of_each_document(tmp_path, shakespeare_text):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "play.txt").write_text(shakespeare_text[:30_000], encoding="utf-8")
    (tmp_path / "lib" / "notes.txt").write_text(shakespeare_text[40_000:50_000], encoding="utf-8")
    lb = Librarian.prepare(BabyPaths(tmp_path, "b"), tmp_path / "lib", VOCAB, block_size=BLOCK)
    docs = document_streams(lb.tokenizer, Library.open(tmp_path / "lib"))
    cuts = [len(d) - max(1, math.floor(len(d) * 0.1)) for d in docs]
    np.testing.assert_array_equal(lb.train, np.concatenate([d[:c] for d, c in zip(docs, cuts, strict=True)]))
    np.testing.assert_array_equal(lb.val, np.concatenate([d[c:] for d, c in zip(docs, cuts, strict=True)]))
    # the tails are never in a training batch: no 16 tokens in a row of one come from a tail
    grams = {tuple(d[i : i + 16]) for d, c in zip(docs, cuts, strict=True) for i in range(c, len(d) - 15)}
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, y = lb.batch(16, BLOCK, g)
        for row in torch.cat([x, y[:, -1:]], 1).tolist():
            assert not any(tuple(row[i : i + 16]) in grams for i in range(len(row) - 15))


def test_babies_born_before_keep_the_interleaved_split(tmp_path, baby):
    _, root, _ = baby
    lb = Librarian.prepare(BabyPaths(tmp_path, "old"), root, VOCAB, block_size=BLOCK, split="interleave")
    stream = expected_stream(lb.tokenizer, Library.open(root))
    m = lb.manifest
    assert len(stream) == len(lb.train) + len(lb.val) and m.split == "interleave"
    chunks = [stream[i * m.chunk : (i + 1) * m.chunk] for i in range(math.ceil(len(stream) / m.chunk))]
    val = [c for i, c in enumerate(chunks) if i % m.val_every == m.val_every - 1]
    train = [c for i, c in enumerate(chunks) if i % m.val_every != m.val_every - 1]
    assert len(val) >= 2
    np.testing.assert_array_equal(lb.val, np.concatenate(val))
    np.testing.assert_array_equal(lb.train, np.concatenate(train))


def test_a_separate_validation_text_leaves_the_whole_library_to_learn(twin, tmp_path):
    paths, root = twin
    (tmp_path / "val.txt").write_text(topics[sorted(topics)[-1]], encoding="utf-8")
    lb = Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=tmp_path / "val.txt")
    np.testing.assert_array_equal(lb.train, expected_stream(lb.tokenizer, Library.open(root)))
    np.testing.assert_array_equal(lb.val, expected_stream(lb.tokenizer, Library.open(tmp_path / "val.txt")))
    assert lb.manifest.val_source
    again = Librarian.prepare(paths, root, VOCAB, block_size=BLOCK)  # without it: the tail split again
    assert not again.manifest.val_source and len(again.train) < len(lb.train)
    with pytest.raises(LibraryError, match="validation text not found"):
        Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=tmp_path / "nope.txt")
    (tmp_path / "blank.txt").write_text("  \n", encoding="utf-8")  # named as what it is, not "library"
    with pytest.raises(LibraryError, match=r"^validation text .*blank\.txt has no readable text$"):
        Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=tmp_path / "blank.txt")
    (tmp_path / "tiny.txt").write_text("too short", encoding="utf-8")
    with pytest.raises(LibraryError, match="validation text is too small"):
        Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=tmp_path / "tiny.txt")


def test_scores_that_would_lie_are_refused(twin, tmp_path):
    """A validation text inside the library is not held out, and a library holding the soul would
    learn babyterm's own checkpoints and logs (QA); a hidden home inside it is never read."""
    paths, root = twin
    inside = next(p for p in sorted(root.rglob("*")) if p.is_file())
    for val in (inside, root):
        with pytest.raises(LibraryError, match=r"is part of the library .* would not be held out"):
            Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=val)
    lib = tmp_path / "writing"
    shutil.copytree(root, lib)
    with pytest.raises(LibraryError, match="holds babyterm's own home"):
        Librarian.prepare(BabyPaths(lib / "home", "kid"), lib, VOCAB, block_size=BLOCK)
    hidden = BabyPaths(lib / ".babyterm", "kid")  # skipped as hidden: reading lib never reads it
    assert Librarian.prepare(hidden, lib, VOCAB, block_size=BLOCK).train.size > 0


def test_cache_is_reused_and_rebuilt_when_the_library_changes(twin):
    paths, root = twin
    tasks = []
    manifest = paths.corpus / "manifest.json"
    mtime = manifest.stat().st_mtime_ns
    tok_before = paths.tokenizer.read_bytes()
    Librarian.prepare(
        paths, root, VOCAB, progress=lambda task, done, detail: tasks.append(task), block_size=BLOCK
    )
    assert "encoding" not in tasks and "tokenizer" not in tasks
    assert manifest.stat().st_mtime_ns == mtime
    changed = shutil.copytree(root, paths.home / "changed")
    (changed / "new.txt").write_text("A new page of writing, quite unlike the rest.", encoding="utf-8")
    tasks.clear()
    lb = Librarian.prepare(
        paths, changed, VOCAB, progress=lambda task, done, detail: tasks.append(task), block_size=BLOCK
    )
    assert "encoding" in tasks and "tokenizer" not in tasks  # a baby keeps its tokenizer for life
    assert paths.tokenizer.read_bytes() == tok_before
    assert len(lb.train) + len(lb.val) == len(expected_stream(lb.tokenizer, Library.open(changed)))


def test_too_small_library_says_how_much_is_needed(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tiny.txt").write_text("Just a line or two of text.\n" * 3, encoding="utf-8")
    paths = BabyPaths(tmp_path / "home", "small")
    with pytest.raises(LibraryError, match=r"too small: .* KB of text") as e:
        Librarian.prepare(paths, tmp_path / "lib", VOCAB, block_size=BLOCK)
    assert "\n" not in str(e.value)
    assert not paths.tokenizer.exists()  # no tokenizer learned from a library that was refused
    with pytest.raises(LibraryError, match="vocabulary of 100 is too small"):
        Librarian.prepare(paths, tmp_path / "lib", 100)


# -- batches ----------------------------------------------------------------------------------------


def is_window(data, row) -> bool:
    view = np.lib.stride_tricks.sliding_window_view(np.asarray(data), len(row))
    return bool((view == np.asarray(row)).all(axis=1).any())


def test_batches_are_shifted_windows_of_train(baby):
    lb = baby[2]
    x, y = lb.batch(8, BLOCK, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, BLOCK) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    for xi, yi in zip(x, y, strict=True):
        assert is_window(lb.train, torch.cat([xi, yi[-1:]]).numpy())


def test_batches_are_reproducible_from_the_generator_state(baby):
    lb = baby[2]
    g = torch.Generator().manual_seed(123)
    lb.batch(4, BLOCK, g)
    state = g.get_state()
    first = [lb.batch(4, BLOCK, g) for _ in range(3)]
    g.set_state(state)
    again = [lb.batch(4, BLOCK, g) for _ in range(3)]
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_bpe_dropout_spells_the_same_windows_otherwise_and_only_when_asked(twin):
    lb = Librarian.prepare(twin[0], twin[1], VOCAB, block_size=BLOCK)
    plain = lb.batch(16, BLOCK, torch.Generator().manual_seed(7))
    lb.bpe_dropout = 0.3
    split = lb.batch(16, BLOCK, torch.Generator().manual_seed(7))
    assert not torch.equal(plain[0], split[0])
    assert torch.equal(split[0][:, 1:], split[1][:, :-1])  # still shifted pairs
    text = lambda ids: "".join(lb.tokenizer.id_to_token(int(i)) for i in ids)  # noqa: E731
    for row, other in zip(plain[0], split[0], strict=True):  # the same window's start, in more pieces
        assert text(row).startswith(text(other))
    again = lb.batch(16, BLOCK, torch.Generator().manual_seed(7))
    assert torch.equal(split[0], again[0])


def test_extra_text_reaches_the_batches_and_persists(twin):
    paths, root = twin
    lb = Librarian.prepare(paths, root, VOCAB, block_size=BLOCK)
    line = "zebra quokka xylophone jubilee " * 3
    lb.add_text(line, "correction")
    lb.add_text(line, "correction")
    assert lb.user_tokens >= BLOCK + 1 and lb.scribe_tokens == 0
    extra = np.concatenate([[T.BOS_ID, *lb.encode(line), T.EOS_ID]] * 2)
    g = torch.Generator().manual_seed(0)
    rows = [
        torch.cat([x, y[:, -1:]], 1)
        for x, y in (lb.batch(16, BLOCK, g, extra_fraction=0.5) for _ in range(4))
    ]
    from_extra = [is_window(extra, r.numpy()) for r in torch.cat(rows)]
    assert 10 < sum(from_extra) < 54  # about half of the 64 rows
    records = [json.loads(s) for s in paths.extra_text.read_text(encoding="utf-8").splitlines()]
    assert [(r["source"], r["text"]) for r in records] == [("correction", line), ("correction", line)]
    with open(paths.extra_text, "a", encoding="utf-8") as f:
        f.write('{"time": 1, "sou')  # a line cut short by a crash
    logged = []
    again = Librarian.prepare(paths, root, VOCAB, log=logged.append, block_size=BLOCK)
    assert again.extra_tokens == lb.extra_tokens and "not a text record" in logged[0]
    x, _ = again.batch(16, BLOCK, torch.Generator().manual_seed(0), extra_fraction=0.0)
    assert not any(is_window(extra, r.numpy()) for r in x)


def test_val_batches_are_fixed_non_overlapping_windows(baby):
    lb = baby[2]
    count = (len(lb.val) - 1) // BLOCK
    every = lb.val_batches(4, BLOCK, 10_000)
    assert sum(len(x) for x, _ in every) == count  # covers the held-out text, bar a last part-window
    targets = torch.cat([y.flatten() for _, y in every])
    np.testing.assert_array_equal(targets.numpy(), lb.val[1 : count * BLOCK + 1])  # each scored once
    first = lb.val_batches(4, BLOCK, 3)
    assert len(first) == 3
    for (x, y), (x2, y2) in zip(first, lb.val_batches(4, BLOCK, 3), strict=True):
        assert x.shape == (4, BLOCK) and torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(x[:, 1:], y[:, :-1])
    starts = [int(r[0]) for x, _ in first for r in x]
    assert starts[0] == int(lb.val[0]) and first[-1][1][-1, -1] == int(lb.val[count * BLOCK])
    (x, _), *_ = lb.val_batches(2, len(lb.val) + 10, 1)  # a block longer than val: one shorter window
    assert x.shape == (1, len(lb.val) - 1)


def test_bits_per_byte_by_hand_on_a_tiny_model(twin, tmp_path):
    """The tutor's sum: nats over every scored target / ln 2 / the UTF-8 bytes of exactly that text."""
    from brain import build_brain, preset_config

    paths, root = twin
    text = topics[sorted(topics)[-1]][:3000]
    (tmp_path / "val.txt").write_text(text, encoding="utf-8")
    lb = Librarian.prepare(paths, root, VOCAB, block_size=BLOCK, val_text=tmp_path / "val.txt")
    torch.manual_seed(0)
    model = build_brain(preset_config("transformer", "tiny", VOCAB, dim=32, n_layers=1, max_seq_len=BLOCK))
    model.eval()
    nats = scored = 0.0
    with torch.no_grad():
        for x, y in lb.val_batches(4, BLOCK, 1000):
            logits, _ = model(x)
            nats += torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="sum"
            ).item()
            scored += lb.scored_bytes(lb.token_bytes, x, y).item()
    # by hand: one token at a time, each from the window it was scored in
    ids = [T.BOS_ID, *lb.encode(text), T.EOS_ID]
    count = (len(ids) - 1) // BLOCK
    hand = 0.0
    with torch.no_grad():
        for w in range(count):
            window = torch.tensor([ids[w * BLOCK : (w + 1) * BLOCK]])
            logp = torch.log_softmax(model(window)[0][0], -1)
            hand -= sum(logp[t, ids[w * BLOCK + t + 1]].item() for t in range(BLOCK))
    scored_text = lb.decode(ids[1 : count * BLOCK + 1])  # the text those targets stand for
    assert text.startswith(scored_text) and len(scored_text) > len(text) // 2
    assert scored == len(scored_text.encode("utf-8"))
    assert nats == pytest.approx(hand, rel=1e-5)
    bpb = nats / math.log(2) / scored
    assert bpb == pytest.approx(hand / math.log(2) / len(scored_text.encode("utf-8")), rel=1e-5)


def test_sample_snippet(baby):
    lb = baby[2]
    g = torch.Generator().manual_seed(5)
    for _ in range(10):
        prompt, truth = lb.sample_snippet(24, g, truth_length=8)
        assert len(prompt) == 24 and len(truth) == 8 and is_window(lb.train, prompt + truth)
        assert lb.tokenizer.id_to_token(prompt[0]).startswith(T.SPACE)


def test_the_scribe_gets_a_bounded_share_that_grows_with_what_it_wrote(twin):
    paths, root = twin
    lb = Librarian.prepare(paths, root, VOCAB, block_size=BLOCK)
    lb.scribe_max_share = 0.05
    line = "the scribe thinks this guess was rather good, all things considered."
    g = torch.Generator().manual_seed(0)

    def scribe_rows(batches: int) -> float:
        scribe = lb._extra_ids["scribe"]
        rows = [
            torch.cat([x, y[:, -1:]], 1) for x, y in (lb.batch(16, BLOCK, g, 0.5) for _ in range(batches))
        ]
        return sum(is_window(scribe, r.numpy()) for r in torch.cat(rows)) / (16 * batches)

    shares = []
    for lines in (10, 40, 400):
        while lb.scribe_tokens < lines * len(lb.encode(line)):
            lb.add_text(line, "scribe")
        assert lb.scribe_share() <= 0.05
        shares.append(lb.scribe_share())
        measured = scribe_rows(50)
        assert measured <= lb.scribe_share() * 1.5 + 0.01  # within its bound
        for _ in range(20):  # never more rows in one batch than the share's ceiling
            x, y = lb.batch(16, BLOCK, g, 0.0)
            rows = torch.cat([x, y[:, -1:]], 1)
            assert sum(is_window(lb._extra_ids["scribe"], r.numpy()) for r in rows) <= math.ceil(
                lb.scribe_share() * 16
            )
    assert shares[0] < shares[1] <= shares[2] == 0.05  # it grows with what the scribe wrote, to the cap
    # corrections are the user's words: they do not count towards the scribe's share
    before = lb.scribe_share()
    for _ in range(50):
        lb.add_text("a correction the user typed, in the user's own words.", "correction")
    assert lb.scribe_share() == before and lb.user_tokens > 0
