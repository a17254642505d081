"""Streaming a reply's text token by token, only ever as whole characters.

A character outside the vocabulary arrives as byte-fallback tokens (`…` is <0xE2><0x80><0xA6>);
decoding a prefix of them would show U+FFFD. The stream keeps the bytes of an unfinished
character until it is complete; only a truly invalid byte sequence shows as U+FFFD.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer

from school.tokenizer import SPACE, SPECIALS

_BYTE_PIECE = re.compile(r"<0x([0-9A-F]{2})>")


def piece_bytes(tok: Tokenizer) -> list[bytes]:
    """Each id's bytes as the decoder writes them: a byte piece its byte, ▁ a space, specials nothing."""
    table: list[bytes] = []
    for i in range(tok.get_vocab_size()):
        piece = tok.id_to_token(i) or ""
        if i < len(SPECIALS):
            table.append(b"")
        elif (m := _BYTE_PIECE.fullmatch(piece)) is not None:
            table.append(bytes([int(m.group(1), 16)]))
        else:
            table.append(piece.replace(SPACE, " ").encode("utf-8"))
    return table


class TextStream:
    """Feed token ids, get back the text they completed (possibly ""); `close()` flushes the rest.

    The first space of the text is dropped, as `school.tokenizer.decode` drops the dummy prefix,
    so the pieces put together equal `decode(ids)` for every valid text.
    """

    def __init__(self, tok: Tokenizer, table: list[bytes] | None = None) -> None:
        self.table = table if table is not None else piece_bytes(tok)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.started = False
        self.text = ""
        """Everything shown so far."""

    def feed(self, token_id: int) -> str:
        data = self.table[token_id] if 0 <= token_id < len(self.table) else b""
        return self._show(self.decoder.decode(data))

    def close(self) -> str:
        """What an unfinished character left behind, as U+FFFD (nothing when the text was whole)."""
        return self._show(self.decoder.decode(b"", final=True))

    def _show(self, new: str) -> str:
        if new and not self.started:
            self.started = True
            new = new.removeprefix(" ")
        self.text += new
        return new


def stream_text(tok: Tokenizer, ids: Iterable[int]) -> Iterator[str]:
    """The non-empty pieces of text that `ids` complete, one per id at most, then the flush."""
    stream = TextStream(tok)
    for i in ids:
        if piece := stream.feed(i):
            yield piece
    if rest := stream.close():
        yield rest
