"""Reading the user's library: which files are text, read in bounded blocks, and a fingerprint of them.

No file is ever read whole: text arrives in blocks of at most `READ_BYTES`, is hashed as it is read
and handed on in pieces, so a gigabyte of text costs a few blocks of memory. Text is UTF-8, or
UTF-16 with a BOM, or whatever charset-normalizer reads confidently (cp1252, latin-1, ...). Files
that are not text (NUL bytes without a UTF-16 BOM, bytes no encoding reads with confidence),
special files (FIFOs, sockets, devices), links that go nowhere or round in circles, hidden files
and unreadable ones are skipped, each with a logged reason.

A file may change between the first read (which decides what the library holds) and the read
that encodes it. The second read hashes what it hands on, so `Library.fingerprint` always names
the text that was last read; a change is logged, never silently mixed.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import itertools
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from school.tokenizer import split_pieces

Log = Callable[[str], None]

READ_BYTES = 4 << 20  # bytes read at a time; a block, its text and its UTF-8 bound the memory used
SAMPLE_PIECE = 1 << 18  # the tokenizer's sample comes in pieces of about this many characters


class LibraryError(Exception):
    """A user-facing problem with the library: printed as one line, never as a traceback."""


@dataclass(frozen=True)
class Document:
    name: str
    text: str


class _Unreadable(Exception):
    """Why a file cannot be read as text, in a few words."""


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symlink loop"
    return f"unreadable ({e.strerror or e})"


def _shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by os as lone surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return name
    return "a device" if stat.S_ISBLK(mode) else "not a regular file"


def _open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; anything else is refused before a single read can block."""
    # O_NONBLOCK: opening a FIFO that took a file's place must not wait for a writer
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise _Unreadable(_why(e)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _Unreadable(f"not a regular file ({_kind(mode)})")
    return os.fdopen(fd, "rb", buffering=0)


def _blocks(f: BinaryIO) -> Iterator[bytes]:
    """The file's bytes, `READ_BYTES` at a time, until the end it has while it is read."""
    while block := f.read(READ_BYTES):
        yield block


def _decoded(path: Path, found: Callable[[str], None] | None = None) -> Iterator[str]:
    """The text of a file block by block: BOM dropped, CRLF as LF; raises _Unreadable.

    The first block decides the encoding (see `_encoding_of`), which `found` is told before any
    text is handed on; later blocks must decode in it too.
    """
    with _open_regular(path) as f:
        offset, held, encoding = 0, "", "utf-8"
        try:
            blocks = _blocks(f)
            first = next(blocks, b"")
            encoding = _encoding_of(first, final=len(first) < READ_BYTES)
            if found is not None:
                found(encoding)
            wide = encoding == "utf-16"  # its NUL bytes are text; a NUL character is not
            decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8" else encoding)()
            for block in itertools.chain([first], blocks):
                nul = -1 if wide else block.find(b"\0")
                if nul >= 0:
                    raise _Unreadable(f"binary (NUL byte at {offset + nul:,})")
                offset += len(block)
                text = held + decoder.decode(block)
                if wide and "\0" in text:
                    raise _Unreadable("binary (a NUL character in UTF-16)")
                held = "\r" if text.endswith("\r") else ""  # its "\n" may start the next block
                yield text[: len(text) - len(held)].replace("\r\n", "\n")
            yield held + decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            near, what = max(0, offset - len(e.object) + e.start), _ENCODING_NAMES.get(encoding, encoding)
            raise _Unreadable(f"not {what} (bad byte near {near:,})") from None
        except OSError as e:
            raise _Unreadable(_why(e)) from None


_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-16": "UTF-16"}
DETECT_BYTES = 1 << 16  # the detector reads this much of the first block: enough, and quick
MAX_CHAOS = 0.2  # charset-normalizer's mess ratio above which a guess is noise (its own default limit)


def _encoding_of(block: bytes, final: bool) -> str:
    """The encoding of a file whose first block is `block` (the whole file when `final`).

    UTF-8 is the fast path: no detector runs when the block decodes as UTF-8. A UTF-16 BOM means
    UTF-16; any other NUL byte means binary. Otherwise charset-normalizer guesses from the start of
    the block, and cp1252 wins when it reads the bytes about as cleanly as the guess: it is what
    latin-1 and Windows files almost always are, and the detector is easily swayed between code
    pages when they are mostly ASCII. A guess whose text is messy, or in a language the detector
    cannot recognise (other than cp1252), is refused rather than decoded into noise.
    """
    if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    nul = block.find(b"\0")
    if nul >= 0:
        raise _Unreadable(f"binary (NUL byte at {nul:,})")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(block, final=final)
        return "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    import charset_normalizer  # only for files that are not UTF-8

    # whole lines around the first byte that is not UTF-8 (text before it may be all ASCII), so
    # that a multi-byte character is never cut in two
    start = block.rfind(b"\n", 0, max(0, bad - DETECT_BYTES // 2)) + 1
    sample = block[start : start + DETECT_BYTES]
    if start + DETECT_BYTES < len(block) and (cut := sample.rfind(b"\n")) > 0:
        sample = sample[: cut + 1]
    guess = charset_normalizer.from_bytes(sample).best()
    if guess is not None:
        west = charset_normalizer.from_bytes(sample, cp_isolation=["cp1252"]).best()
        if west is not None and west.chaos <= guess.chaos + 0.05:
            guess = west
    if guess is None or guess.chaos > MAX_CHAOS or (guess.coherence == 0 and guess.encoding != "cp1252"):
        raise _Unreadable(f"not UTF-8 (bad byte near {bad:,}) and no other encoding fits with confidence")
    return codecs.lookup(guess.encoding).name


class _Reader:
    """One document's text, block by block, hashed and counted exactly as it is handed on."""

    def __init__(self, path: Path | None, text: str | None = None) -> None:
        self.path, self.text = path, text
        self.sha = hashlib.sha256()
        self.n_bytes = self.n_chars = 0
        self.has_text = False
        self.error = ""
        self.encoding = "utf-8"

    def texts(self) -> Iterator[str]:
        given = (t for t in [self.text or ""])  # a generator, so it closes like the file's
        source = _decoded(self.path, self._found) if self.path is not None else given
        try:
            for text in source:
                data = text.encode("utf-8")
                self.sha.update(data)
                self.n_bytes += len(data)
                self.n_chars += len(text)
                self.has_text = self.has_text or (bool(text) and not text.isspace())
                yield text
        except _Unreadable as e:
            self.error = str(e)
        finally:
            source.close()

    def _found(self, encoding: str) -> None:
        self.encoding = encoding

    def read_all(self) -> _Reader:
        for _ in self.texts():
            pass
        return self


@dataclass
class _Entry:
    """A document the library holds, and what its text was when last read."""

    name: str
    path: Path | None
    text: str | None  # the text itself when it is not a file (Python's docs)
    digest: bytes
    n_bytes: int
    n_chars: int

    @classmethod
    def of(cls, name: str, r: _Reader) -> _Entry:
        return cls(name, r.path, r.text, r.sha.digest(), r.n_bytes, r.n_chars)

    def reader(self) -> _Reader:
        return _Reader(self.path, self.text)


def _pieces(texts: Iterable[str], size: int) -> Iterator[str]:
    """Blocks of text re-cut into the pieces `split_pieces` would cut the whole text into."""
    carry = ""
    for text in texts:
        carry += text
        if len(carry) > size:  # split_pieces' cuts depend only on text up to one piece ahead
            *done, carry = split_pieces(carry, size)
            yield from done
    if carry:
        yield carry


def _walk(root: Path, log: Log) -> list[tuple[str, Path]]:
    """(name, path) of regular files under `root` (links followed), hidden ones left out; each
    folder is read once. Names are for showing and fingerprints; paths for opening."""
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, str]] = [(root, ".")]  # a stack, not recursion: nesting has no limit
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                log(f"skipped {rel}: folder already read (symlink)")
                continue
            seen.add(key)
            names = sorted(os.listdir(folder))
        except OSError as e:
            log(f"skipped {rel}: {_why(e)}")
            continue
        for name in names:
            path, sub = folder / name, _shown(name) if rel == "." else f"{rel}/{_shown(name)}"
            if name.startswith("."):
                log(f"skipped {sub}: hidden")
                continue
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:
                log(f"skipped {sub}: broken link")
                continue
            except OSError as e:
                log(f"skipped {sub}: {_why(e)}")
                continue
            if stat.S_ISDIR(mode):
                stack.append((path, sub))
            elif stat.S_ISREG(mode):
                found.append((sub, path))
            else:
                log(f"skipped {sub}: not a regular file ({_kind(mode)})")
    return sorted(found)


class Library:
    """The user's texts (a file, a folder read recursively, or Python's built-in docs) and a fingerprint."""

    def __init__(self, label: str, log: Log | None = None) -> None:
        self.label = label
        self._log = log or (lambda message: None)
        self._entries: list[_Entry] = []

    def _add(self, name: str, reader: _Reader) -> None:
        self._entries.append(_Entry.of(name, reader))

    @property
    def n_documents(self) -> int:
        return len(self._entries)

    @property
    def n_bytes(self) -> int:
        return sum(e.n_bytes for e in self._entries)

    @property
    def n_chars(self) -> int:
        return sum(e.n_chars for e in self._entries)

    @property
    def fingerprint(self) -> str:
        """sha256 over every document's name and the text last read from it."""
        h = hashlib.sha256()
        for e in self._entries:
            name = e.name.encode("utf-8")
            # length-prefixed name, then fixed-size digest and size: no two libraries collide
            h.update(len(name).to_bytes(8, "little") + name + e.digest + e.n_bytes.to_bytes(8, "little"))
        return h.hexdigest()

    @classmethod
    def open(cls, library: str | Path | None, log: Log | None = None, what: str = "library") -> Library:
        """Check what a library holds; files that are not text are skipped with a logged reason.
        `what` names it in a refusal ("validation text" for a text scored apart)."""
        log = log or (lambda message: None)
        if library is None:
            try:
                from pydoc_data.topics import topics
            except ImportError:
                raise LibraryError("this Python has no built-in docs (pydoc_data): name a library") from None
            lib = cls("Python's built-in docs", log)
            for name in sorted(topics):
                if topics[name].strip():
                    lib._add(name, _Reader(None, topics[name]).read_all())
            return lib
        root = Path(library).expanduser()
        try:
            is_dir = stat.S_ISDIR(os.stat(root).st_mode)
        except FileNotFoundError:
            raise LibraryError(f"{what} not found: {root}") from None
        except OSError as e:
            raise LibraryError(f"cannot read {what} {root}: {_why(e)}") from None
        files = _walk(root, log) if is_dir else [(_shown(root.name), root)]
        if not files:
            raise LibraryError(f"{what} {root} has no files")
        lib = cls(str(root), log)
        for name, p in files:
            reader = _Reader(p).read_all()
            if reader.error:
                log(f"skipped {name}: {reader.error}")
            elif not reader.has_text:
                log(f"skipped {name}: no text")
            else:
                if reader.encoding != "utf-8":
                    log(f"reading {name} as {reader.encoding}")
                if reader.n_bytes > READ_BYTES:
                    mb, block = reader.n_bytes / 1e6, READ_BYTES >> 20
                    log(f"streaming {name}: {mb:,.0f} MB, read {block} MB at a time")
                lib._add(name, reader)
        if not lib._entries:
            raise LibraryError(f"{what} {root} has no readable text")
        return lib

    def stream(self, size: int) -> Iterator[tuple[str, bool, bool]]:
        """Every document as (piece, first piece, last piece), pieces of about `size` characters.

        This read is the one that counts: a document that changed since it was first read is taken
        as it is now, and `fingerprint` follows it; one that can no longer be read is dropped, or
        cut where it broke. Each such change is logged.
        """
        kept: list[_Entry] = []
        for entry in self._entries:
            reader = entry.reader()
            held: str | None = None
            first = True
            for piece in _pieces(reader.texts(), size):
                if held is not None:
                    yield held, first, False
                    first = False
                held = piece
            if held is not None:
                yield held, first, True
            new = _Entry.of(entry.name, reader)
            if held is None:  # kept entries are exactly the documents streamed (see `sizes`)
                why = reader.error or "no text"
                self._log(f"skipped {entry.name}: {why} (it changed since the library was read)")
                continue
            if reader.error:
                kept_bytes = f"kept its first {new.n_bytes:,} bytes"
                self._log(f"{entry.name} broke while being read ({reader.error}): {kept_bytes}")
            elif (new.digest, new.n_bytes) != (entry.digest, entry.n_bytes):
                self._log(f"{entry.name} changed while being read: learning it as it is now")
            kept.append(new)
        self._entries = kept

    def sizes(self) -> list[tuple[str, int]]:
        """(name, characters) of every document, in order; after `stream`, of those it streamed."""
        return [(e.name, e.n_chars) for e in self._entries]

    def documents(self) -> Iterator[Document]:
        """Every document whole, in a fixed order (for small libraries and tests; see `stream`)."""
        for entry in self._entries:
            reader = entry.reader()
            text = "".join(reader.texts())
            if not reader.error:  # a file changed into something unreadable since open(): skip it
                yield Document(entry.name, text)

    def sample_texts(self, limit: int) -> Iterator[str]:
        """At most about `limit` characters, as the same share of the start of every document."""
        share = min(1.0, limit / max(1, self.n_chars))
        for entry in self._entries:
            want = math.ceil(entry.n_chars * share)
            pieces = _pieces(entry.reader().texts(), SAMPLE_PIECE)
            for i, piece in enumerate(pieces):
                # a later piece starts with the space it was cut before: as a word start, not two
                text = piece[1:] if i and piece.startswith(" ") else piece
                yield text[:want]
                want -= len(piece)
                if want <= 0:
                    break
            pieces.close()
