"""Bad library input: binary, bad UTF-8, NUL, a 1 GB file, deep folders, loops, special and unreadable
files, files that change while read; every file read or skipped with a reason, memory bounded."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import school.librarian as librarian
import school.library as library
from school import tokenizer as T
from school.librarian import Librarian
from school.library import Library, LibraryError
from soul.paths import BabyPaths

torch.set_num_threads(1)

VOCAB, BLOCK = 300, 32


def opened(root: Path) -> tuple[Library, str]:
    logged: list[str] = []
    return Library.open(root, logged.append), "\n".join(logged)


def names(lib: Library) -> list[str]:
    return [d.name for d in lib.documents()]


def write_topics(root: Path, n: int = 12) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in sorted(topics)[:n]:
        (root / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    return root


def corpus_stream(lb: Librarian) -> np.ndarray:
    """train.bin and val.bin dealt back into the order they were encoded in."""
    m = lb.manifest
    train = iter([lb.train[i : i + m.chunk] for i in range(0, len(lb.train), m.chunk)])
    val = iter([lb.val[i : i + m.chunk] for i in range(0, len(lb.val), m.chunk)])
    n = -(-len(lb.train) // m.chunk) - (-len(lb.val) // m.chunk)
    return np.concatenate(
        [next(val) if i % m.val_every == m.val_every - 1 else next(train) for i in range(n)]
    )


# -- what is text ---------------------------------------------------------------------------------


def test_binary_bad_utf8_and_nul_anywhere_are_skipped_with_reasons(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(library, "READ_BYTES", 64)  # so "far in" is several blocks in
    (tmp_path / "good.txt").write_text("fine words " * 40, encoding="utf-8")
    (tmp_path / "late-nul.txt").write_bytes(b"text " * 100 + b"\0" + b"more")
    (tmp_path / "late-bad.txt").write_bytes(b"text " * 100 + b"\xff\xfe" + b"more")
    (tmp_path / "cut.txt").write_bytes(b"text " * 30 + "é".encode()[:1])  # cut mid-character
    (tmp_path / "utf16.txt").write_text("hello", encoding="utf-16-le")  # no BOM: NUL bytes are binary
    (tmp_path / "empty.txt").write_bytes(b"")
    lib, log = opened(tmp_path)
    assert names(lib) == ["good.txt"]
    for expected in (
        "late-nul.txt: binary (NUL byte at 500)",
        "late-bad.txt: not UTF-8 (bad byte near 500)",
        "cut.txt: not UTF-8",
        "utf16.txt: binary",
        "empty.txt: no text",
    ):
        assert expected in log


@pytest.mark.parametrize("read_bytes", [1, 2, 3, 5, 7, 64])
def test_blocks_cut_anywhere_decode_like_the_whole(tmp_path: Path, monkeypatch, read_bytes: int) -> None:
    text = "\ufeffcafé\r\n日本語 😀 שלום\r\n\r\nend\r"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(library, "READ_BYTES", read_bytes)
    want = text[1:].replace("\r\n", "\n")
    assert "".join(library._decoded(tmp_path / "a.txt")) == want
    lib = Library.open(tmp_path)
    assert [d.text for d in lib.documents()] == [want] and lib.n_bytes == len(want.encode())


def test_a_sparse_gigabyte_is_skipped_without_reading_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "story.txt").write_text("A short story.", encoding="utf-8")
    with open(tmp_path / "disk.img", "wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte of zeros that takes no disk
    read: list[int] = []
    real = library._blocks

    def counted(f):
        for block in real(f):
            read.append(len(block))
            yield block

    monkeypatch.setattr(library, "_blocks", counted)
    lib, log = opened(tmp_path)
    assert names(lib) == ["story.txt"] and "disk.img: binary (NUL byte at 0)" in log
    assert sum(read) <= library.READ_BYTES + 100  # one block of it, not the gigabyte


# -- the shape of the tree ------------------------------------------------------------------------


def test_deep_folders_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    # past Python's recursion limit of 1000: the walk keeps its own stack. Made and removed one
    # level at a time, as pathlib's mkdir and shutil's rmtree recurse themselves.
    folders = [tmp_path / "d"]
    for _ in range(1000):
        os.mkdir(folders[-1])
        folders.append(folders[-1] / "d")
    bottom = folders[-2] / "bottom.txt"
    bottom.write_text("the bottom of the well", encoding="utf-8")
    (tmp_path / "d" / "top.txt").write_text("near the top", encoding="utf-8")
    try:
        lib, _ = opened(tmp_path)
        assert names(lib) == ["d/" * 1000 + "bottom.txt", "d/top.txt"]
    finally:
        bottom.unlink()
        (tmp_path / "d" / "top.txt").unlink()
        for folder in reversed(folders[:-1]):
            folder.rmdir()


def test_links_loops_and_special_files_are_skipped_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("real text here", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path, tmp_path / "sub" / "up")  # a folder loop
    os.symlink(tmp_path / "sub", tmp_path / "again")  # the same folder twice
    os.symlink("a-loop", tmp_path / "a-loop")  # a link to itself
    os.symlink(tmp_path / "x-link", tmp_path / "y-link")
    os.symlink(tmp_path / "y-link", tmp_path / "x-link")  # two links in a circle
    os.symlink(tmp_path / "nowhere", tmp_path / "broken")
    os.symlink(tmp_path / "real.txt", tmp_path / "alias.txt")  # a link to a file is read
    os.symlink("/dev/zero", tmp_path / "zero")
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        lib, log = opened(tmp_path)
    finally:
        sock.close()
    assert names(lib) == ["alias.txt", "real.txt"]
    for expected in (
        "sub/up: folder already read (symlink)",
        "a-loop: symlink loop",
        "x-link: symlink loop",
        "y-link: symlink loop",
        "broken: broken link",
        "zero: not a regular file (a device)",
        "fifo: not a regular file (a FIFO)",
        "sock: not a regular file (a socket)",
    ):
        assert expected in log
    assert "again: folder already read" in log or "sub: folder already read" in log


def test_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    with open(root + b"/caf\xe9.txt", "wb") as f:  # a Latin-1 name over UTF-8 text
        f.write(b"text under an odd name")
    with open(root + b"/bin\xff.dat", "wb") as f:
        f.write(b"\0\1")
    lib, log = opened(tmp_path)
    assert names(lib) == ["caf\ufffd.txt"] and "bin\ufffd.dat: binary" in log
    log.encode("utf-8")  # names shown in logs (and the JSONL run log) are valid text
    assert Library.open(tmp_path).fingerprint == lib.fingerprint


def test_a_fifo_as_the_library_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: result.append(_raises(lambda: Library.open(tmp_path / "pipe"))))
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "opening a FIFO library blocked"
    assert isinstance(result[0], LibraryError) and "no readable text" in str(result[0])
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(LibraryError, match="symlink loop"):
        Library.open(tmp_path / "loop")


def _raises(fn) -> BaseException | None:
    try:
        fn()
    except BaseException as e:
        return e
    return None


def test_unreadable_files_and_folders(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "ok.txt").write_text("readable words", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("locked away", encoding="utf-8")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "x.txt").write_text("hidden away", encoding="utf-8")
    real_open, real_listdir = os.open, os.listdir

    def deny_open(path, *args, **kw):  # root ignores chmod 000, so deny like the OS would
        if str(path).endswith("secret.txt"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kw)

    def deny_listdir(path):
        if str(path).endswith("private"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_listdir(path)

    monkeypatch.setattr(library.os, "open", deny_open)
    monkeypatch.setattr(library.os, "listdir", deny_listdir)
    lib, log = opened(tmp_path)
    assert names(lib) == ["ok.txt"]
    assert "secret.txt: unreadable (Permission denied)" in log
    assert "private: unreadable (Permission denied)" in log


# -- files that change ----------------------------------------------------------------------------


def hashed(texts: dict[str, str]) -> str:
    """The fingerprint a library of exactly these (name, text) documents has."""
    lib = Library("test")
    for name, text in texts.items():
        lib._add(name, library._Reader(None, text).read_all())
    return lib.fingerprint


@pytest.mark.parametrize("change", ["grow", "shrink", "nul"])
def test_a_file_changing_mid_read_is_logged_and_fingerprinted_as_read(
    tmp_path: Path, monkeypatch, change: str
) -> None:
    monkeypatch.setattr(library, "READ_BYTES", 32)
    path = tmp_path / "live.txt"
    path.write_text("first words of a live file " * 10, encoding="utf-8")
    (tmp_path / "still.txt").write_text("a quiet file", encoding="utf-8")
    lib, _ = opened(tmp_path)
    logged: list[str] = []
    lib._log = logged.append
    real = library._blocks

    def changing(f):  # changes the file once its first block has been read
        for i, block in enumerate(real(f)):
            yield block
            if i == 0 and os.fstat(f.fileno()).st_ino == path.stat().st_ino:
                if change == "grow":
                    with open(path, "a", encoding="utf-8") as g:
                        g.write("and words added while it was read " * 5)
                elif change == "shrink":
                    os.truncate(path, 40)
                else:
                    with open(path, "ab") as g:
                        g.write(b"\0binary now")

    monkeypatch.setattr(library, "_blocks", changing)
    pieces: dict[str, str] = {}
    order = iter(["live.txt", "still.txt"])
    name = next(order)
    for piece, _, last in lib.stream(25):
        pieces[name] = pieces.get(name, "") + piece
        if last:
            name = next(order, "")
    assert set(pieces) == {"live.txt", "still.txt"}
    assert lib.fingerprint == hashed(pieces)  # the fingerprint names exactly what was handed on
    assert lib.n_bytes == sum(len(t.encode()) for t in pieces.values())
    assert len(logged) == 1 and logged[0].startswith("live.txt ")
    assert ("broke while being read (binary" if change == "nul" else "changed while being read") in logged[0]


def test_a_library_changed_before_encoding_is_cached_as_encoded(tmp_path: Path, monkeypatch) -> None:
    root = write_topics(tmp_path / "lib")
    paths = BabyPaths(tmp_path / "home", "baby")
    changed = root / f"{sorted(topics)[3]}.txt"
    real_stream = Library.stream

    def edit_then_stream(self, size):
        changed.write_text("Rewritten while the baby was busy. " * 50, encoding="utf-8")
        (root / f"{sorted(topics)[5]}.txt").write_bytes(b"\0 now binary")
        yield from real_stream(self, size)

    monkeypatch.setattr(Library, "stream", edit_then_stream)
    logged: list[str] = []
    # the interleaved split: corpus_stream can deal its chunks back into the encoded order
    lb = Librarian.prepare(paths, root, VOCAB, log=logged.append, block_size=BLOCK, split="interleave")
    monkeypatch.setattr(Library, "stream", real_stream)
    assert any("changed while being read" in m for m in logged)
    assert any("binary" in m and "changed since the library was read" in m for m in logged)
    now = Library.open(root)
    assert lb.manifest.library == now.fingerprint and lb.manifest.text_bytes == now.n_bytes
    expected = np.concatenate(
        [[T.BOS_ID, *T.encode(lb.tokenizer, d.text), T.EOS_ID] for d in now.documents()]
    )
    np.testing.assert_array_equal(corpus_stream(lb), expected)
    tasks: list[str] = []
    Librarian.prepare(
        paths, root, VOCAB, progress=lambda t, d, s: tasks.append(t), block_size=BLOCK, split="interleave"
    )
    assert "encoding" not in tasks  # the cache names what it holds, so it is trusted again


def test_the_corpus_encoded_block_by_block_equals_the_whole_cut_into_pieces(
    tmp_path: Path, monkeypatch
) -> None:
    """Tiny blocks, pieces and batches give the very tokens of each whole document cut into pieces."""
    root = write_topics(tmp_path / "lib")
    monkeypatch.setattr(library, "READ_BYTES", 97)
    monkeypatch.setattr(librarian, "PIECE_CHARS", 61)
    monkeypatch.setattr(librarian, "BATCH_CHARS", 500)
    monkeypatch.setattr(librarian, "DEAL_TOKENS", 3000)
    lb = Librarian.prepare(BabyPaths(tmp_path / "home", "baby"), root, VOCAB, block_size=BLOCK)
    body = T.continuation_tokenizer(lb.tokenizer)
    expected = []
    for doc in Library.open(root).documents():
        pieces = list(T.split_pieces(doc.text, 61))
        ids = T.encode(lb.tokenizer, pieces[0])
        for piece in pieces[1:]:
            ids += body.encode(piece, add_special_tokens=False).ids
        expected.append([T.BOS_ID, *ids, T.EOS_ID])
    held = librarian.held_out_documents(Library.open(root).sizes(), 0.1)
    cuts = librarian.tail_cuts([len(e) for e in expected], held, 0.1)
    whole = np.concatenate(expected)
    np.testing.assert_array_equal(lb.train, np.concatenate([whole[a:c] for a, c, _ in cuts]))
    np.testing.assert_array_equal(lb.val, np.concatenate([whole[c:b] for _, c, b in cuts]))


# -- memory ---------------------------------------------------------------------------------------

MEMORY = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from school import tokenizer as T
    from school.librarian import Librarian
    from school.library import Library
    from soul.paths import BabyPaths

    mode, small, big, home = sys.argv[1:]
    if mode == "encode":
        tok = T.train_tokenizer(["the quick brown fox jumps over the lazy dog " * 50], 300)
    out = {}
    for name, path in (("small", small), ("big", big)):
        if mode == "read":
            sum(len(piece) for piece, _, _ in Library.open(path).stream(1 << 14))
        else:
            paths = BabyPaths(Path(home), name)
            T.save_tokenizer(tok, paths.tokenizer)  # an old baby: prepare only reads and encodes
            lb = Librarian.prepare(paths, path, 300, block_size=32)
            out["tokens_" + name] = len(lb.train) + len(lb.val)
        out[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the peak so far
    print(json.dumps(out))
    """
)


def write_text_file(path: Path, mb: int) -> Path:
    rng = np.random.default_rng(0)
    words = np.array(["the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with"])
    block = "".join(" ".join(rng.choice(words, 14)) + "\n" for _ in range(15_000))  # ~0.85 MB
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(mb):
            f.write(block)
    return path


def peaks(mode: str, small: Path, big: Path, home: Path) -> dict[str, int]:
    # one tokenizers thread: its worker threads' malloc arenas grow a few MB with the work done,
    # which would blur what this measures (the memory babyterm's own code holds)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY, mode, str(small), str(big), str(home)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_reading_memory_stays_bounded_however_big_the_file(tmp_path: Path) -> None:
    """The peak after reading a 30 MB file is the peak after a 5 MB one: blocks are held, never files.

    Reading the whole file would add at least its size twice (bytes, then text) to the second peak.
    """
    small = write_text_file(tmp_path / "small.txt", 6)  # more than a block already
    read = peaks("read", small, write_text_file(tmp_path / "big.txt", 36), tmp_path / "home")
    assert read["big"] - read["small"] < 8 << 20


@pytest.mark.slow
def test_encoding_memory_stays_bounded_however_big_the_file(tmp_path: Path) -> None:
    """The same for the whole of prepare (read, encode, deal out): 12 MB of text after 4 MB."""
    small = write_text_file(tmp_path / "small.txt", 5)  # more than a block and a batch already
    enc = peaks("encode", small, write_text_file(tmp_path / "big.txt", 14), tmp_path / "home")
    assert enc["tokens_big"] > 2.5 * enc["tokens_small"]
    assert enc["big"] - enc["small"] < 8 << 20


# -- any tree at all ------------------------------------------------------------------------------

CONTENTS = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=120).map(lambda s: s.encode("utf-8")),
    st.text(alphabet=st.sampled_from("ab \r\n\t\0é日😀"), max_size=120).map(lambda s: s.encode("utf-8")),
    st.just(b"\xef\xbb\xbf text with a BOM\r\n"),
)
PARTS = st.lists(st.sampled_from(["a", "b", ".c", "d d", "é"]), min_size=1, max_size=4)
ENTRIES = st.lists(
    st.tuples(PARTS, st.one_of(CONTENTS, st.just("dir"), st.just("link"), st.just("loop"))), max_size=12
)


def build_tree(root: Path, entries: list) -> list[str]:
    """Make the entries that fit (one under an earlier file, or taken, is dropped); returns the files."""
    made: list[str] = []
    for parts, content in entries:
        path = root.joinpath(*parts)
        parents = [*path.parents][: len(parts) - 1]
        if os.path.lexists(path) or any(os.path.lexists(p) and not p.is_dir() for p in parents):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "dir":
            path.mkdir()
        elif content == "link":
            path.symlink_to(root)
        elif content == "loop":
            path.symlink_to(path)
            made.append("/".join(parts))
        else:
            path.write_bytes(content)
            made.append("/".join(parts))
    return made


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=ENTRIES, read_bytes=st.integers(1, 40))
def test_any_tree_is_read_or_skipped_with_a_reason(entries: list, read_bytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(library, "READ_BYTES", read_bytes)
        root = Path(tmp) / "lib"
        root.mkdir()
        files = build_tree(root, entries)
        logged: list[str] = []
        docs: dict[str, str] = {}
        try:
            lib = Library.open(root, logged.append)
        except LibraryError as e:
            assert "\n" not in str(e)
        else:
            docs = {d.name: d.text for d in lib.documents()}
            # a file that is not UTF-8 is read in the encoding the log names for it
            named = dict(
                line.removeprefix("reading ").rsplit(" as ", 1)
                for line in logged
                if line.startswith("reading ")
            )
            for name, text in docs.items():
                raw = (root / name).read_bytes()
                encoding = named.get(name, "utf-8-sig")
                assert text == raw.decode(encoding).replace("\r\n", "\n") and text.strip()
            assert Library.open(root).fingerprint == lib.fingerprint
            streamed = "".join(p for p, _, _ in lib.stream(7))
            assert streamed == "".join(docs.values()) and lib.fingerprint == hashed(docs)
        skipped = {line.split(": ")[0].removeprefix("skipped ") for line in logged}
        for name in files:
            prefixes = {"/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 2)}
            assert name in docs or prefixes & skipped, (name, logged)
