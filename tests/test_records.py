"""Records with one owner: the resume state of a checkpoint and the lines of the chat history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soul.chat_log import ChatLine, ChatLog
from soul.resume_state import VERSION, ResumeState

FIRST_SOULS_STATE = {  # state.json as the first souls wrote it: no version field
    "step": 40,
    "tokens_seen": 4096,
    "elapsed_s": 3.5,
    "rng": {"batch": "AAEC", "torch": "AwQF", "python": [3, [1, 2, 3], None]},
    "metabolism": {"avg_loss": 2.0},
    "pixel": [0.1, 0.2, 0.3],
    "pixel_target": [0.5, 0.5, 0.5],
    "lr_scale": 0.5,
}


def test_resume_state_round_trip() -> None:
    state = ResumeState.from_json(FIRST_SOULS_STATE)
    assert state.version == VERSION and state.step == 40 and state.rng_python == [3, [1, 2, 3], None]
    written = json.loads(json.dumps(state.to_json()))
    assert written == {**FIRST_SOULS_STATE, "version": VERSION}
    assert ResumeState.from_json(written) == state


def test_an_older_or_adopted_state_takes_defaults() -> None:
    state = ResumeState.from_json({"step": 7}, step=9)
    assert (state.step, state.rng_batch, state.pixel, state.lr_scale) == (7, None, None, 1.0)
    assert ResumeState.from_json({}, step=9).step == 9  # the checkpoint's own step


@pytest.mark.parametrize(
    "damage",
    [
        {"step": "40"},
        {"tokens_seen": 1.5},
        {"elapsed_s": True},
        {"rng": []},
        {"rng": {"batch": 3}},
        {"pixel": [0.1, 0.2]},
        {"metabolism": "hungry"},
        {"version": VERSION + 1},
    ],
)
def test_a_damaged_state_is_refused(damage: dict) -> None:
    with pytest.raises(ValueError, match="trainer state"):
        ResumeState.from_json({**FIRST_SOULS_STATE, **damage})


def test_chat_log_round_trip_and_old_lines(tmp_path: Path) -> None:
    log = ChatLog(tmp_path / "chat.jsonl")
    log.write(ChatLine("you", "hé 日本", 3, "live (step 3)", "r1", 1.0))
    with open(log.path, "a", encoding="utf-8") as f:  # as the old `babyterm chat` wrote it
        f.write(json.dumps({"role": "baby", "text": "hi", "step": 3, "weights": "step 3"}) + "\n")
    lines = log.tail(10)
    assert lines[0] == ChatLine("you", "hé 日本", 3, "live (step 3)", "r1", 1.0)
    assert lines[1] == ChatLine("baby", "hi", 3, "step 3")


def test_a_damaged_chat_line_is_skipped_with_a_message(tmp_path: Path) -> None:
    log = ChatLog(tmp_path / "chat.jsonl")
    log.path.write_text(
        "\n".join(
            [
                json.dumps({"role": "you", "text": "a", "step": 1}),
                json.dumps({"role": "you", "text": 5, "step": 1}),
                json.dumps({"role": "robot", "text": "b", "step": 1}),
                json.dumps({"role": "baby", "text": "c", "step": 1, "version": 99}),
                json.dumps({"role": "baby", "text": "d", "step": 2}),
                '{"role": "baby", "te',  # cut short by a crash: skipped quietly
            ]
        )
    )
    said: list[str] = []
    assert [line.text for line in log.tail(10, warn=said.append)] == ["a", "d"]
    assert len(said) == 3 and said[0].startswith("chat.jsonl line 2 skipped")
    assert "unknown role 'robot'" in said[1] and "unknown version 99" in said[2]


def test_a_checkpoint_with_a_damaged_state_is_passed_over(tmp_path: Path) -> None:
    from school.events import ErrorEvent
    from tests.test_faults_files import reseal
    from tests.test_tutor import make_tutor

    library = tmp_path / "ascii.txt"
    library.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    tutor = make_tutor(library, save_every=1)
    tutor.options.steps = 2
    tutor.run()
    newest = sorted(tutor.paths.checkpoints.glob("step-*"))[-1]
    state = json.loads((newest / "state.json").read_text())
    assert state["version"] == VERSION and state["step"] == 2
    (newest / "state.json").write_text(json.dumps({**state, "tokens_seen": "lots"}))
    reseal(newest, "state.json")
    again = make_tutor(library)
    again.options.vocab_size = None  # the baby has the vocabulary its short library gave it
    warnings: list[str] = []
    again.subscribe(lambda e: warnings.append(e.message) if isinstance(e, ErrorEvent) else None)
    again.prepare()
    assert again.step == 1
    assert "tokens_seen is str" in warnings[0] and "using step-00000001" in warnings[0]
