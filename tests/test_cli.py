"""The command line: the happy path headless, and every user mistake as one line with exit code 2."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import babyterm
from babyterm.cli import _options, main, parse_args, version
from school.commands import Chat
from school.options import TrainOptions
from school.tutor import Tutor
from soul import checkpoint as ckpt
from soul.paths import baby_paths

ROOT = Path(__file__).resolve().parents[1]


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
    dyn = ("--min-p", "0.1", "--dynatemp-range", "0.5", "--dynatemp-exp", "2")
    code, out, _ = run(capsys, "chat", "--max-tokens", "5", "--seed", "1", *dyn, "To be")
    assert code == 0 and out.strip()
    code, out, err = run(capsys, "chat", "--max-tokens", "5", "--seed", "1", "x" * 20_000 + " To be")
    assert code == 0 and out.strip() and "reads only the last 4,000 characters" in err

    code, out, _ = run(capsys, "logs")
    assert code == 0 and "run" in out.splitlines()[0]
    code, out, _ = run(capsys, "logs", "--run", "latest", "--kind", "save")
    assert code == 0 and '"kind": "save"' in out and '"kind": "step"' not in out
    code, out, err = run(capsys, "logs", "--run", "latest", "--kind", "scribe", "--text", "zzqx")
    assert code == 0 and not out and err.startswith("babyterm: no 'scribe' events with that text in run ")

    code, out, _ = run(capsys, "info")
    assert code == 0 and "baby" in out and "transformer" in out and "step       20" in out
    code, out, _ = run(capsys, "train", "--steps", "10", "--threads", "1")  # ten more: to step 30
    assert code == 0 and "saved step 30" in out
    newest = ckpt.list_checkpoints(baby_paths("baby").checkpoints)[-1][1]
    with open(newest / "model.safetensors", "r+b") as f:  # cut short, as by a full disk
        f.truncate(100)
    code, out, _ = run(capsys, "info")  # not healthy at step 30: the next run goes on from 20
    assert code == 0 and "step       20" in out
    assert f"checkpoint {newest.name} is damaged (model.safetensors is 100 bytes" in out

    code, _, err = run(capsys, "train", "--brain", "babyllm", "--steps", "1")
    assert_user_error(code, err, "--baby")


CHAT_SAMPLING = ("max_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "emphasis")


def test_where_train_serve_listens_is_taken_with_serve_and_defaults_without() -> None:
    args = parse_args(["train", "--serve", "--port", "9001", "--host", "0.0.0.0"])
    assert (args.port, args.host, args.api_key) == (9001, "0.0.0.0", None)
    for argv in (["train"], ["train", "--serve"], ["serve"]):
        args = parse_args(argv)
        assert (args.port, args.host, args.api_key) == (8000, "127.0.0.1", None)


def test_chat_options_default_to_the_chat_commands() -> None:
    args, asked = parse_args(["chat"]), Chat(id="", text="")
    for name in (*CHAT_SAMPLING, "min_p", "dynatemp_range", "dynatemp_exponent", "seed"):
        assert getattr(args, name) == getattr(asked, name), name
    args = parse_args(["chat", "--min-p", "0.05", "--dynatemp-range", "0.5", "--dynatemp-exp", "1.5"])
    assert (args.min_p, args.dynatemp_range, args.dynatemp_exponent) == (0.05, 0.5, 1.5)


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "babyterm", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "train" in done.stdout


# -- options mean what they say ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--baby", "notes", "train"],
        ["train", "--baby", "notes"],
        ["--baby", "other", "train", "--baby", "notes"],  # the later one wins
        ["--baby", "notes"],  # the app
    ],
)
def test_a_shared_option_counts_before_or_after_the_command(argv: list[str], tmp_path: Path) -> None:
    options = _options(parse_args([*argv, "--library", str(tmp_path)]))
    assert options.baby == "notes" and options.library == str(tmp_path.resolve())
    assert (options.device, options.seed, options.precision) == ("auto", 1337, "auto")  # the defaults


def test_each_command_keeps_its_own_defaults() -> None:
    assert parse_args(["chat"]).seed is None  # sampling: fresh randomness unless asked
    assert parse_args(["--seed", "5", "chat"]).seed == 5
    assert parse_args(["train"]).seed == 1337
    assert parse_args(["adopt", "x.bin"]).baby is None  # named from the path
    assert parse_args(["--home", "/h", "info"]).home == "/h"


def test_an_option_before_the_command_reaches_the_command(capsys) -> None:
    code, _, err = run(capsys, "--baby", "ghost", "chat", "hello")
    assert_user_error(code, err, "ghost")


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--library", "x", "chat", "hi"], ["--library", "chat"]),
        (["--threads", "2", "info"], ["--threads", "info"]),
        (["--baby", "b", "info"], ["--baby", "info"]),
        (["--compile", "on", "logs"], ["--compile", "logs"]),
        (["--steps", "5", "train"], ["5"]),  # --steps belongs to train: after it
    ],
)
def test_an_option_the_command_does_not_take_is_refused(capsys, argv: list[str], words: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert_user_error(exit_info.value.code, capsys.readouterr().err, *words)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bab=x", "train"],
        ["train", "--brai", "babyllm"],
        ["chat", "--temp", "0"],
        ["train", "--step", "1"],
    ],
)
def test_abbreviations_are_refused(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert_user_error(exit_info.value.code, capsys.readouterr().err, "unrecognized")


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps", "0"],
        ["--steps", "-1"],
        ["--minutes", "0"],
        ["--minutes", "-2.5"],
        ["--minutes", "nan"],
        ["--threads", "-1"],  # torch.set_num_threads raised a traceback for it
        ["--threads", "0"],
    ],
)
def test_budgets_must_be_above_zero(capsys, isolated_home: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert_user_error(exit_info.value.code, capsys.readouterr().err, argv[0], "more than 0")
    assert not isolated_home.exists()  # refused before anything was made


@pytest.mark.parametrize(
    "argv,words",
    [
        (["train", "--dropout", "1"], ["--dropout", "below 1"]),
        (["train", "--weight-decay", "-0.1"], ["--weight-decay", "0 or more"]),
        (["train", "--weight-decay", "1e9"], ["--weight-decay", "at most 1"]),
        (["train", "--lr", "1e9"], ["--lr", "at most 1"]),
        (["train", "--threads", "100000"], ["--threads", "cores"]),
        (["train", "--steps", "1.5"], ["--steps", "whole number"]),
        (["train", "--steps", "99999999999999"], ["--steps", "at most 1,000,000,000"]),
        (["train", "--minutes", "1e30"], ["--minutes", "at most"]),
        (["train", "--lr", "0"], ["--lr", "more than 0"]),
        (["train", "--bpe-dropout", "1.5"], ["--bpe-dropout", "below 1"]),
        (["train", "--context", "0"], ["--context"]),
        (["train", "--context", "1"], ["--context", "at least 8"]),
        (["train", "--context", "99999999"], ["--context", "at most 8,192"]),
        (["chat", "hi", "--temperature", "-1"], ["--temperature", "from 0 to 5"]),
        (["chat", "hi", "--temperature", "nan"], ["--temperature"]),
        (["chat", "hi", "--top-p", "2"], ["--top-p", "above 0, up to 1"]),
        (["chat", "hi", "--top-p", "0"], ["--top-p"]),
        (["chat", "hi", "--min-p", "2"], ["--min-p"]),
        (["chat", "hi", "--repetition-penalty", "0"], ["--repetition-penalty", "above 0"]),
        (["chat", "hi", "--dynatemp-range", "-1"], ["--dynatemp-range"]),
        (["chat", "hi", "--emphasis", "-100"], ["--emphasis"]),
        (["chat", "hi", "--max-tokens", "0"], ["--max-tokens", "from 1"]),
        (["chat", "hi", "--max-tokens", "1.5"], ["--max-tokens", "whole number"]),
        (["train", "--vocab-size", "x"], ["--vocab-size"]),
        (["train", "--home", ""], ["--home", "is empty"]),
        (["train", "--library", " "], ["--library", "is empty"]),
        (["export", "--format", "hf", "--out", ""], ["--out", "is empty"]),
        (["train", "--port", "9000"], ["--port", "only to `train --serve`"]),
        (["train", "--api-key", "k", "--steps", "1"], ["--api-key", "add --serve"]),
        (["chat", "--step", "soon"], ["--step", "live, best or a step"]),
        (["export", "--format", "hf", "--step", "-4"], ["--step"]),
    ],
)
def test_recipe_overrides_and_the_weights_selector_are_checked(
    capsys, isolated_home: Path, argv: list[str], words: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert_user_error(exit_info.value.code, capsys.readouterr().err, *words)
    assert not isolated_home.exists()


def test_a_vocabulary_too_small_is_refused_before_anything_is_made(
    capsys, small_library: Path, isolated_home: Path
) -> None:
    code, _, err = run(
        capsys, "train", "--library", str(small_library), "--steps", "1", "--vocab-size", "100"
    )
    assert_user_error(code, err, "--vocab-size", "at least")
    assert "measuring" not in err  # refused before the speed probe


def test_a_vocabulary_the_library_cannot_fill_is_said_and_recorded_as_born(
    capsys, tmp_path: Path, isolated_home: Path
) -> None:
    library = tmp_path / "tiny.txt"
    library.write_text("the cat sat on the mat. " * 400, encoding="utf-8")
    argv = ["train", "--library", str(library), "--steps", "1", "--threads", "1", "--vocab-size", "99999"]
    code, out, err = run(capsys, *argv)
    assert code == 0
    from soul.paths import baby_paths
    from soul.record import BabyRecord

    record = BabyRecord.load(baby_paths("baby", None))
    assert record.vocab_size < 99999
    assert record.recipe["vocab_size"] == record.vocab_size  # not the size asked for
    assert f"a vocabulary of {record.vocab_size:,}, not 99,999" in out + err


def test_logs_refuses_a_kind_no_event_has(capsys, isolated_home: Path) -> None:
    code, _, err = run(capsys, "logs", "--kind", "nosuch")
    assert_user_error(code, err, "'nosuch'", "eval", "step")


def test_the_recipe_options_reach_a_new_baby_and_step_best_reaches_chat_and_export(
    capsys, small_library: Path, tmp_path: Path
) -> None:
    argv = ["train", "--library", str(small_library), "--steps", "1", "--threads", "1"]
    code, _, _ = run(
        capsys, *argv, "--dropout", "0.05", "--weight-decay", "0.3", "--lr", "1e-3", "--context", "40",
        "--bpe-dropout", "0.2",
    )  # fmt: skip
    assert code == 0
    from soul.paths import baby_paths
    from soul.record import BabyRecord

    record = BabyRecord.load(baby_paths())
    assert record.preset == "recipe" and record.recipe["context"] == 40
    assert (record.brain["dropout"], record.brain["max_seq_len"]) == (0.05, 40)
    assert (record.syllabus["weight_decay"], record.syllabus["lr"]) == (0.3, 1e-3)
    assert record.syllabus["bpe_dropout"] == record.recipe["bpe_dropout"] == 0.2
    code, _, err = run(capsys, "chat", "--step", "best", "hi")  # no eval yet: no best self
    assert_user_error(code, err, "no best self yet")
    code, _, err = run(
        capsys, "export", "--format", "safetensors", "--step", "best", "--out", str(tmp_path / "o")
    )
    assert_user_error(code, err, "no best self yet")
    code, _, _ = run(
        capsys, "export", "--format", "safetensors", "--step", "live", "--out", str(tmp_path / "o")
    )
    assert code == 0


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"babyterm {version()}"
    try:
        assert version() == importlib.metadata.version("babyterm")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        assert version() == babyterm.__version__


# -- signals: SIGTERM and SIGHUP save and exit 0, as the first Ctrl+C does ------------------------------


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory, shakespeare_text: str) -> Path:
    """A home with a baby so small that `babyterm train` logs its first step in well under a second."""
    root = tmp_path_factory.mktemp("tiny")
    library = root / "library.txt"
    library.write_text(shakespeare_text[:60_000], encoding="utf-8")
    options = TrainOptions(
        baby="tiny", home=str(root / "home"), library=str(library), vocab_size=300, threads=1
    )
    Tutor(options, brain_overrides=dict(dim=32, n_layers=2, n_heads=4, max_seq_len=32)).prepare()
    return root / "home"


@pytest.mark.slow
@pytest.mark.parametrize("signame", [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)])
def test_a_stop_signal_saves_and_exits_zero(signame: str, tiny_home: Path, isolated_home: Path) -> None:
    shutil.copytree(tiny_home, isolated_home)
    paths = baby_paths("tiny", str(isolated_home))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "BABYTERM_HOME": str(isolated_home),
    }
    argv = ["--baby", "tiny", "train", "--device", "cpu", "--threads", "1", "--minutes", "5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "babyterm", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(120, proc.kill)  # a hang fails the test instead of blocking the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.lstrip().startswith("step"):
                break
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate()
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err
    assert "saving…" in err and signame in err and "Traceback" not in err
    saved = ckpt.list_checkpoints(paths.checkpoints)
    assert saved and saved[-1][0] >= 10  # the first step line comes at step 10
    assert f"saved step {saved[-1][0]} (stop" in out


# -- a path through a file is named, not "File exists", and nothing is left behind ---------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--baby", "tiny", "--format", "hf", "--out", "{file}/made/hf"],
        ["export", "--baby", "tiny", "--format", "gguf", "--out", "{file}/gguf"],
        ["chat", "--baby", "tiny", "--export", "{file}/made/chat.md"],
        ["info", "--home", "{file}"],
        ["chat", "hi", "--home", "{file}"],
        ["serve", "--home", "{file}"],
        ["train", "--home", "{file}", "--steps", "1"],
    ],
)
def test_a_path_through_a_file_is_named_as_such(
    capsys, tiny_home: Path, tmp_path: Path, argv: list[str]
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    home = [] if "--home" in argv else ["--home", str(tiny_home)]
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run(capsys, *(a.format(file=blocker) for a in argv), *home)
    assert_user_error(code, err, f"{blocker} is a file, not a folder")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_failed_export_takes_back_the_folders_it_made(
    capsys, tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from school.exports import hf

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hf, "save_file", broken)
    out = tmp_path / "new" / "deeper" / "hf"
    code, _, err = run(
        capsys, "export", "--home", str(tiny_home), "--baby", "tiny", "--format", "hf", "--out", str(out)
    )
    assert_user_error(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "saves,doing,rest", [(True, "saving", "without saving"), (False, "stopping", "at once")]
)
def test_a_stop_signal_says_what_it_is_doing(capsys, saves: bool, doing: str, rest: str) -> None:
    from babyterm.stopping import stop_on_signals

    asked = []
    with stop_on_signals(lambda: asked.append(1), saves=saves):
        signal.raise_signal(signal.SIGTERM)  # handled on this (the main) thread before it returns
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)  # a second one does not wait
    assert asked == [1]
    err = capsys.readouterr().err
    assert f"{doing}… (SIGTERM; SIGTERM again to quit {rest})" in err
    assert "saving" not in err or doing == "saving"  # `serve` has nothing to save and says so


def test_interactive_chat_takes_the_panes_sampling_commands(
    capsys, tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from school.speaker import Speaker

    sent: list[Chat] = []
    answer = Speaker.answer

    def recording(self: Speaker, command: Chat, *rest: object) -> object:
        sent.append(command)
        return answer(self, command, *rest)

    monkeypatch.setattr(Speaker, "answer", recording)
    lines = ["/temp 0", "/max 6", "To be", "/topk 2.5", "/step 10", "/bogus", "/reset", "To be", "/help", ""]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run(capsys, "chat", "--home", str(tiny_home), "--baby", "tiny", "--top-k", "7")
    assert code == 0, err
    said = out.split("you> ")
    assert said[1].strip() == "temperature 0" and said[2].strip() == "max tokens 6"
    asked = [(c.temperature, c.max_tokens, c.top_k) for c in sent]
    assert asked == [(0.0, 6, 7), (0.8, 120, 7)]  # the /commands, then /reset back to the flags
    assert "sampling back to the flags' settings: temp 0.8 · k 7" in out and "/temp 0.8" in out  # /help
    refusals = err.strip().splitlines()
    assert len(refusals) == 3 and all(r.startswith("babyterm: ") for r in refusals)
    assert "top-k must be a whole number" in refusals[0] and "--step" in refusals[1]
    assert "no command /bogus" in refusals[2]


def test_a_ctrl_c_while_python_still_imports_is_one_line(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from babyterm.launch import INTERRUPTED, run

    real_import = builtins.__import__

    def interrupted(name: str, *args: object, **kwargs: object) -> object:
        if name == "babyterm.cli":
            raise KeyboardInterrupt  # as a Ctrl+C lands half a second in
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "babyterm.cli")
    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert run() == INTERRUPTED
    assert capsys.readouterr().err == "babyterm: interrupted\n"


def test_the_console_script_is_the_guarded_entry_point() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"babyterm": "babyterm.launch:run"}


def test_a_reader_that_leaves_the_pipe_early_is_no_traceback() -> None:
    """`babyterm xray TEXT | head` closed the pipe under a long report: BrokenPipeError's traceback."""
    code = (
        "import sys, babyterm.cli as cli\n"
        "def main():\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "cli.main = main\n"
        "from babyterm.launch import run\n"
        "sys.exit(run())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 141 and done.stderr == ""
