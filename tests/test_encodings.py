"""The files people have: cp1252, latin-1 and UTF-16 text is read; binary and noise are still refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import school.library as library
from school.library import Library

FRENCH = (
    "Le café était plein ; la serveuse apportait des crêpes et du thé. Où est la gare ? "
    "Ça va très bien, merci. Les élèves répètent leçon après leçon, à la fenêtre du château.\n"
)
SMART = (
    "He said \u201chello\u201d and she replied \u2018fine\u2019 \u2014 it\u2019s a lovely day\u2026 "
    "isn\u2019t it? The price was 5\u20ac, or so the note said.\n"
)
MIXED = "Fünf große Bären äßen süße Äpfel. 日本語のテキスト 🎉 and ☃ in one line.\r\nSecond line.\r\n"


def opened(root: Path) -> tuple[Library, str]:
    logged: list[str] = []
    return Library.open(root, logged.append), "\n".join(logged)


def texts(lib: Library) -> dict[str, str]:
    return {d.name: d.text for d in lib.documents()}


def test_latin1_is_decoded_and_the_log_names_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes((FRENCH * 4).encode("latin-1"))
    lib, log = opened(tmp_path)
    assert texts(lib) == {"notes.txt": FRENCH * 4}
    assert "reading notes.txt as cp1252" in log  # latin-1's printable range is cp1252's


def test_cp1252_smart_quotes_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "letter.txt").write_bytes((SMART * 4).encode("cp1252"))
    lib, log = opened(tmp_path)
    assert texts(lib) == {"letter.txt": SMART * 4}
    assert "letter.txt as cp1252" in log


def test_mostly_ascii_latin1_source_code_is_not_read_as_another_code_page(tmp_path: Path) -> None:
    code = "def f(x):\n    return x * 2  # double it\n\n" * 30 + "# auteur: José Müller\n"
    (tmp_path / "f.py").write_bytes(code.encode("latin-1"))
    lib, _ = opened(tmp_path)
    assert texts(lib) == {"f.py": code}


def test_other_code_pages_the_detector_is_sure_of(tmp_path: Path) -> None:
    russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация губерний.\n"
    (tmp_path / "ru.txt").write_bytes((russian * 5).encode("cp1251"))
    lib, log = opened(tmp_path)
    assert texts(lib) == {"ru.txt": russian * 5} and "ru.txt as cp1251" in log


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_decoded(tmp_path: Path, monkeypatch, codec: str) -> None:
    monkeypatch.setattr(library, "READ_BYTES", 7)  # odd blocks cut code units and surrogate pairs
    bom = "\ufeff".encode(codec)
    (tmp_path / "wide.txt").write_bytes(bom + MIXED.encode(codec))
    lib, log = opened(tmp_path)
    assert texts(lib) == {"wide.txt": MIXED.replace("\r\n", "\n")}
    assert "reading wide.txt as utf-16" in log
    assert lib.n_bytes == len(MIXED.replace("\r\n", "\n").encode("utf-8"))  # counted as the text it is


def test_utf16_without_a_bom_and_nul_characters_are_binary(tmp_path: Path) -> None:
    (tmp_path / "nobom.txt").write_bytes(MIXED.encode("utf-16-le"))
    (tmp_path / "nul.txt").write_bytes(("text\0more " * 20).encode("utf-16"))
    (tmp_path / "ok.txt").write_text("fine words " * 20, encoding="utf-8")
    lib, log = opened(tmp_path)
    assert list(texts(lib)) == ["ok.txt"]
    assert "nobom.txt: binary (NUL byte at 1)" in log
    assert "nul.txt: binary (a NUL character in UTF-16)" in log


def test_binary_and_random_bytes_are_refused(tmp_path: Path) -> None:
    rng = random.Random(0)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    for i, n in enumerate((64, 4096, 100_000)):
        (tmp_path / f"noise{i}.bin").write_bytes(bytes(rng.randrange(1, 256) for _ in range(n)))
    (tmp_path / "ok.txt").write_text("fine words " * 20, encoding="utf-8")
    lib, log = opened(tmp_path)
    assert list(texts(lib)) == ["ok.txt"]
    assert "image.png: binary (NUL byte at 8)" in log
    for i in range(3):
        assert f"noise{i}.bin: not UTF-8 (bad byte near" in log and "no other encoding fits" in log


def test_utf8_never_asks_the_detector(tmp_path: Path, monkeypatch) -> None:
    import charset_normalizer

    def refuse(*args, **kwargs):
        raise AssertionError("the detector ran on UTF-8 text")

    monkeypatch.setattr(charset_normalizer, "from_bytes", refuse)
    (tmp_path / "a.txt").write_text(MIXED, encoding="utf-8")
    lib, log = opened(tmp_path)
    assert texts(lib) == {"a.txt": MIXED.replace("\r\n", "\n")} and "reading" not in log


def test_a_later_block_that_breaks_the_encoding_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(library, "READ_BYTES", 1 << 12)
    data = (SMART * 40).encode("cp1252")
    (tmp_path / "late.txt").write_bytes(data + b"\x81 is not cp1252")  # 0x81 is undefined there
    (tmp_path / "ok.txt").write_text("fine words " * 20, encoding="utf-8")
    _, log = opened(tmp_path)
    assert "late.txt: not cp1252 (bad byte near" in log


def test_encoded_files_stream_and_fingerprint_like_their_utf8_twin(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "t.txt").write_bytes((FRENCH * 4).encode("cp1252"))
    (tmp_path / "b" / "t.txt").write_text(FRENCH * 4, encoding="utf-8")
    one, two = Library.open(tmp_path / "a"), Library.open(tmp_path / "b")
    assert one.fingerprint == two.fingerprint
    assert list(one.stream(100)) == list(two.stream(100))
