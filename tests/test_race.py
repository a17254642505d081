"""The race: two tiny brains take turns on one library and tokenizer, fairly, for a few seconds."""

from __future__ import annotations

import pytest
import torch

from school.race import RacePoint, check_brains, race
from soul.checkpoint import load_latest
from soul.paths import SoulError, baby_paths

TINY = {
    "mlp": dict(window=4, embed_dim=16, hidden_dim=64, max_seq_len=32),
    "attention": dict(dim=32, max_seq_len=32),
}
FAST = dict(batch_size=4, warmup_steps=2, eval_batches=2)


def test_two_tiny_brains_race_fairly(small_library, isolated_home):
    torch.set_num_threads(1)
    seen: list[RacePoint] = []
    answered = []
    result = race(
        str(small_library),
        minutes=5 / 60,
        brains=["mlp", "attention"],
        slice_s=0.5,
        prompt="ROMEO:",
        answer_tokens=8,
        device="cpu",
        threads=1,
        vocab_size=300,
        on_point=seen.append,
        on_answer=answered.append,
        brain_overrides=TINY,
        syllabus_overrides=FAST,
    )
    assert seen == list(result.points)  # every point streamed as it happened
    for brain in ("mlp", "attention"):
        curve = [p for p in seen if p.brain == brain]
        assert curve[0].seconds == 0 and curve[0].step == 0  # the newborn, before any training
        assert len(curve) >= 3 and curve[-1].step > curve[0].step
        assert [p.seconds for p in curve] == sorted(p.seconds for p in curve)
        assert curve[-1].val_bpb < curve[0].val_bpb  # it learned something
        paths = baby_paths(f"race-{brain}", str(isolated_home))
        assert paths.config.exists() and load_latest(paths.checkpoints, torch.device("cpu")) is not None
        assert result.babies[brain] == paths.name
    tokenizers = {
        baby_paths(f"race-{b}", str(isolated_home)).tokenizer.read_text() for b in ("mlp", "attention")
    }
    assert len(tokenizers) == 1  # one tokenizer, copied
    assert result.unfairness() < 0.10, result.train_seconds
    assert sum(result.train_seconds.values()) + result.eval_seconds <= result.wall_seconds + 1e-6
    assert result.wall_seconds < 5 + 2.0  # the budget, give or take one last step and evaluation
    assert [a.brain for a in answered] == ["mlp", "attention"] == [a.brain for a in result.answers]
    assert all(a.prompt == "ROMEO:" and isinstance(a.answer, str) for a in answered)


def test_a_race_needs_known_brains():
    assert check_brains(["attention", " mlp", "attention", ""]) == ["attention", "mlp"]
    with pytest.raises(SoulError, match="unknown brain 'gpt'"):
        check_brains(["mlp", "gpt"])
    with pytest.raises(SoulError, match="at least one"):
        check_brains([])


def test_the_printer_draws_curves_fairness_and_answers():
    import io

    from babyterm.race_printer import RacePrinter
    from school.race import RaceAnswer, RaceResult

    points = (
        RacePoint("mlp", 0.0, 8.0, 0),
        RacePoint("attention", 0.0, 8.0, 0),
        RacePoint("mlp", 2.0, 6.0, 50),
        RacePoint("attention", 2.1, 4.0, 30),
    )
    answers = (RaceAnswer("mlp", "Hi", "the \x1b[31mred"), RaceAnswer("attention", "Hi", "two\nlines"))
    result = RaceResult(points, answers, {"mlp": 2.0, "attention": 2.1}, 0.5, 4.6, {"mlp": "race-mlp"})
    out = io.StringIO()
    printer = RacePrinter(out, ["mlp", "attention"])
    for p in points:
        printer.point(p)
    printer.summary(result)
    text = out.getvalue()
    assert "attention      2.1 s  step     30   4.000 bits/byte" in text
    mlp_curve = next(line for line in text.splitlines() if line.startswith("  mlp        █"))
    assert mlp_curve.split()[1] == "█▅" and "6.000 after 2.0 s" in mlp_curve
    assert "(within 2.4% of the mean)" in text  # |2.1 - 2.05| / 2.05
    assert "the red" in text and "\x1b" not in text and "two ⏎ lines" in text
    assert "--baby race-mlp" in text


def test_print_race_refuses_bad_brains_before_anything_is_born(isolated_home):
    import io

    from babyterm.race_printer import print_race

    with pytest.raises(SoulError, match="unknown brain 'gpt'"):
        print_race(None, 1.0, "mlp,gpt", None, io.StringIO())
    with pytest.raises(SoulError, match="--minutes must be positive"):
        print_race(None, 0.0, "mlp", None, io.StringIO())
    assert not (isolated_home / "babies").exists()


def test_the_race_command_runs_two_tiny_brains(small_library, isolated_home, monkeypatch, capsys):
    import functools

    import babyterm.race_printer
    from babyterm.cli import main

    torch.set_num_threads(1)
    tiny = functools.partial(
        race, brain_overrides=TINY, syllabus_overrides=FAST, vocab_size=300, slice_s=0.5, answer_tokens=4
    )
    monkeypatch.setattr(babyterm.race_printer, "race", tiny)  # the CLI's sizes, made tiny for a test
    argv = ["race", "--library", str(small_library), "--minutes", str(3 / 60), "--brains", "mlp,attention"]
    code = main([*argv, "--threads", "1", "--device", "cpu", "--prompt", "ROMEO:"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("racing mlp, attention for 0.05 min")
    assert "each brain's answer to 'ROMEO:'" in out and "--baby race-mlp, race-attention" in out
    assert baby_paths("race-attention", str(isolated_home)).config.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["race", "--brains", "mlp,gpt"], ["unknown brain 'gpt'"]),
        (["race", "--app", "--brains", "gpt"], ["unknown brain 'gpt'"]),  # before the app opens
        (["race", "--minutes", "0"], ["--minutes", "more than 0"]),
        (["race", "--minutes", "-2"], ["--minutes"]),
        (["race", "--baby", "x"], ["--baby"]),
        (["race", "--library", "/no/such/library"], ["library not found"]),
    ],
)
def test_the_race_command_refuses_bad_input_in_one_line(argv, words, isolated_home, capsys):
    from babyterm.cli import main

    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(main(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err
    assert not (isolated_home / "babies").exists()


def test_a_racer_trained_or_talked_to_since_its_race_is_not_started_over(small_library, isolated_home):
    """A race replaces its own racers, but not one the user made theirs (QA: `race` wiped a trained,
    talked-to race-mlp without a word); --replace does it anyway."""
    torch.set_num_threads(1)
    tiny = dict(
        minutes=1 / 60, brains=["mlp", "attention"], slice_s=0.3, answer_tokens=2, device="cpu", threads=1,
        vocab_size=300, brain_overrides=TINY, syllabus_overrides=FAST,
    )  # fmt: skip
    race(str(small_library), **tiny)
    race(str(small_library), **tiny)  # as the last race left it: started over without a word
    paths = baby_paths("race-attention", str(isolated_home))  # the second racer: the first is checked too
    first = baby_paths("race-mlp", str(isolated_home))
    kept = sorted(first.checkpoints.iterdir())
    paths.chat.write_text('{"role": "user", "text": "hi"}\n', encoding="utf-8")
    with pytest.raises(SoulError, match=r"more than a racer now \(it has a chat history\).*--replace"):
        race(str(small_library), **tiny)
    assert paths.chat.exists() and sorted(first.checkpoints.iterdir()) == kept  # refused: nothing touched
    race(str(small_library), **tiny, replace=True)
    assert not paths.chat.exists()
    newest = load_latest(paths.checkpoints, torch.device("cpu")).step
    (paths.root / "race.json").write_text(f'{{"step": {newest - 1}}}', encoding="utf-8")  # trained on
    with pytest.raises(SoulError, match=f"it trained on to step {newest:,} after its race"):
        race(str(small_library), **tiny)
