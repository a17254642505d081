"""The command line: the happy path headless, and every user mistake as one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from babyterm.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0]


def test_missing_library(capsys, tmp_path: Path, isolated_home: Path) -> None:
    code, _, err = run(capsys, "train", "--library", str(tmp_path / "nope"), "--steps", "1")
    assert_user_error(code, err, "nope")
    assert not (isolated_home / "babies").exists() or not any((isolated_home / "babies").iterdir())


def test_missing_validation_text(capsys, tmp_path: Path, small_library: Path, isolated_home: Path) -> None:
    args = (
        "train",
        "--library",
        str(small_library),
        "--val-text",
        str(tmp_path / "gone.txt"),
        "--steps",
        "1",
    )
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, "validation text not found", "gone.txt")
    assert not list(isolated_home.glob("babies/*/config.json"))


def test_empty_library(capsys, tmp_path: Path, isolated_home: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "train", "--library", str(tmp_path / "empty"), "--steps", "1")
    assert_user_error(code, err)
    assert not list(isolated_home.glob("babies/*/config.json"))


def test_library_with_no_readable_text(capsys, tmp_path: Path, isolated_home: Path) -> None:
    lib = tmp_path / "binary"
    lib.mkdir()
    (lib / "a.bin").write_bytes(bytes(range(256)) * 10)
    (lib / "b.txt").write_bytes(b"\xff\xfe\xfa not utf-8 \xc3\x28")
    code, _, err = run(capsys, "train", "--library", str(lib), "--steps", "1")
    assert_user_error(code, err)
    assert not list(isolated_home.glob("babies/*"))


@pytest.mark.parametrize("flag,value", [("--preset", "huge"), ("--brain", "lstm"), ("--precision", "fp16")])
def test_unknown_choice(capsys, flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", flag, value])
    _, err = capsys.readouterr()
    assert_user_error(exit_info.value.code, err, value)


def test_unwritable_home(capsys, tmp_path: Path, small_library: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "train", "--home", str(blocker / "home"), "--library", str(small_library))
    assert_user_error(code, err, "home")


def test_bad_baby_name(capsys) -> None:
    code, _, err = run(capsys, "train", "--baby", "../escape", "--steps", "1")
    assert_user_error(code, err, "baby name")


def test_chat_with_no_baby(capsys) -> None:
    code, _, err = run(capsys, "chat", "--baby", "ghost", "hello")
    assert_user_error(code, err, "ghost")


def test_train_chat_logs_info_and_a_refused_brain(capsys, small_library: Path) -> None:
    code, out, _ = run(capsys, "train", "--library", str(small_library), "--steps", "20", "--threads", "1")
    assert code == 0
    assert "step     10" in out and "saved step 20" in out  # plain lines: stdout is not a terminal
    assert "\x1b[" not in out

    code, out, _ = run(capsys, "chat", "--max-tokens", "5", "--seed", "1", "To be")
    assert code == 0 and out.strip()
    code, out, err = run(capsys, "chat", "--max-tokens", "5", "--seed", "1", "x" * 20_000 + " To be")
    assert code == 0 and out.strip() and "reads only the last 4,000 characters" in err

    code, out, _ = run(capsys, "logs")
    assert code == 0 and "run" in out.splitlines()[0]
    code, out, _ = run(capsys, "logs", "--run", "latest", "--kind", "save")
    assert code == 0 and '"kind": "save"' in out and '"kind": "step"' not in out

    code, out, _ = run(capsys, "info")
    assert code == 0 and "baby" in out and "transformer" in out and "step       20" in out

    code, _, err = run(capsys, "train", "--brain", "babyllm", "--steps", "1")
    assert_user_error(code, err, "--baby")


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "babyterm", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "train" in done.stdout
