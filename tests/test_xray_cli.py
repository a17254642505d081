"""`babyterm xray`: JSON of the saved baby's own numbers, text naming every stage, one-line mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from babyterm.cli import main
from school.revive import revive
from school.tokenizer import encode_prompt
from soul.paths import baby_paths
from tests.baby_factory import make_baby

TEXT = "But soft, what light"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("brain", ["transformer", "babyllm"])
def test_json_is_the_models_numbers(capsys, isolated_home: Path, small_library: Path, brain: str) -> None:
    make_baby(isolated_home, small_library, f"x-{brain}", brain)
    code, out, _ = run(capsys, "xray", "--baby", f"x-{brain}", "--json", "--top-k", "3", TEXT)
    assert code == 0
    shot = json.loads(out)
    baby = revive(baby_paths(f"x-{brain}", str(isolated_home)))
    ids = encode_prompt(baby.tokenizer, TEXT)
    assert [t["id"] for t in shot["tokens"]] == ids
    with torch.no_grad():
        probs = baby.model(torch.tensor([ids]))[0][0].softmax(-1)
    for n, view in enumerate(shot["logits"]):
        assert [g["id"] for g in view["top"]] == probs[n].topk(3).indices.tolist()
    if brain == "transformer":
        row = shot["layers"][0]["heads"][0]["weights"][len(ids) - 1]
        assert sum(row) == pytest.approx(1.0, abs=1e-3)
    else:
        assert len(shot["babyllm"]["gates"]) == 2
    assert shot["stages"][0]["name"] == "tokens"

    code, out, _ = run(capsys, "xray", "--baby", f"x-{brain}", TEXT)
    assert code == 0
    for stage in shot["stages"]:
        assert f"── {stage['name']} ──" in out


def test_mistakes_are_one_line(capsys, isolated_home: Path, small_library: Path) -> None:
    code, _, err = run(capsys, "xray", "--baby", "nobody", "hi")
    assert code == 2 and "no baby named 'nobody'" in err and len(err.strip().splitlines()) == 1
    make_baby(isolated_home, small_library, "x", "transformer")
    with pytest.raises(SystemExit) as refused:  # argparse refuses it before anything loads
        main(["xray", "--baby", "x", "--step", "soon", "hi"])
    out, err = capsys.readouterr()
    assert refused.value.code == 2 and "not live, best or a step number" in err and not out
    code, out, err = run(capsys, "xray", "--baby", "x", "--step", "7", "hi")
    assert code == 2 and "no milestone at step 7" in err and not out and "Traceback" not in err


def test_wild_weights_are_said_and_the_json_stays_json(
    capsys, isolated_home: Path, small_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights finite but huge (a wild learning rate once saved them) make nan and inf inside the
    forward pass: the x-ray says so in one line, draws "?" and writes null, not Infinity (QA: a
    traceback from the bars, and JSON no parser takes)."""
    import school.revive

    make_baby(isolated_home, small_library, "wild", "transformer")
    tame = school.revive.revive

    def wild(*args, **kwargs):
        baby = tame(*args, **kwargs)
        with torch.no_grad():
            for p in baby.model.parameters():
                p.mul_(1e30)
        return baby

    monkeypatch.setattr(school.revive, "revive", wild)
    code, out, err = run(capsys, "xray", "--baby", "wild", TEXT)
    assert code == 0 and "not finite" in err and len(err.strip().splitlines()) == 1
    assert "── logits ──" in out and "?" in out
    code, out, err = run(capsys, "xray", "--baby", "wild", "--json", TEXT)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    shot = json.loads(out, parse_constant=refuse)
    assert code == 0 and shot["stages"][0]["name"] == "tokens" and "not finite" in err


def test_a_prompt_longer_than_the_window_is_said(capsys, isolated_home: Path, small_library: Path) -> None:
    make_baby(isolated_home, small_library, "short", "transformer")
    window = revive(baby_paths("short", str(isolated_home))).model.config.max_seq_len
    code, out, err = run(capsys, "xray", "--baby", "short", "--json", " ".join(["word"] * 3 * window))
    assert code == 0 and err.strip() == f"babyterm: it reads only the last {window:,} tokens (its window)"
    assert len(json.loads(out)["tokens"]) == window
