"""What the app recalls of a baby at launch: recent losses and the scribe's lines, whatever the files hold."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from babyterm.recall import recall
from babyterm.widgets.loss_stream import LossStream
from babyterm.widgets.scribe import comment
from school.counsellor import RunLog
from school.events import EvalEvent, ScribeEvent, StepEvent
from soul.jsonl import append_jsonl
from soul.paths import BabyPaths

PIXEL = (0.5, 0.5, 0.5)


def step(n: int) -> StepEvent:
    return StepEvent(n, 3.0 - n / 100, 1e-3, 1.0, 0.1, n * 512, 1000.0, n * 0.1, PIXEL, PIXEL)


def test_recent_steps_evals_and_scribe_lines_in_order(tmp_path: Path) -> None:
    paths = BabyPaths(tmp_path, "baby")
    paths.logs.mkdir(parents=True)
    log = RunLog(paths.logs, "r1")
    for n in range(1, 11):
        log.write(step(n))
    log.write(EvalEvent(10, 2.9, 1.1, 2.95))
    for n in range(5):
        append_jsonl(paths.scribe, ScribeEvent(n, "meh", f"line {n}", "g", "t").to_dict())
    events = recall(paths, scribe_lines=3)
    assert [e.step for e in events if isinstance(e, StepEvent)] == list(range(1, 11))
    assert [e.val_loss for e in events if isinstance(e, EvalEvent)] == [2.9]
    assert [e.line for e in events if isinstance(e, ScribeEvent)] == ["line 2", "line 3", "line 4"]


def test_a_baby_with_no_past_recalls_nothing(tmp_path: Path) -> None:
    assert recall(BabyPaths(tmp_path, "newborn"), scribe_lines=5) == []


kinds = st.sampled_from(["step", "eval", "pixel", "scribe", "?"])
records = st.dictionaries(
    st.sampled_from(["kind", "step", "loss", "line", "mood", "val_loss", "pred", "x"]),
    st.one_of(kinds, st.integers(), st.floats(), st.text(), st.lists(st.floats(), max_size=4)),
)
# whole records with one field of a wrong type: valid JSON that a bit flip or an editor could leave
retyped = st.builds(
    lambda event, name, value: json.dumps({**event.to_dict(), name: value}),
    st.sampled_from([step(3), EvalEvent(3, 2.0, 1.0, 2.1), ScribeEvent(3, "meh", "l", "g", "t")]),
    st.sampled_from(["step", "loss", "val_loss", "line", "mood", "pixel_pred"]),
    st.one_of(st.text(), st.none(), st.lists(st.integers(), max_size=3), st.booleans()),
)
garbage = st.one_of(records.map(json.dumps), retyped, st.binary().map(lambda b: b.decode("latin-1")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_lines=st.lists(garbage, max_size=12), scribe_lines=st.lists(garbage, max_size=12))
def test_damaged_files_are_left_out_never_raised(log_lines: list[str], scribe_lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as home:
        paths = BabyPaths(Path(home), "baby")
        paths.logs.mkdir(parents=True)
        RunLog(paths.logs, "good").write(step(1))
        (paths.logs / "zz-bad.jsonl").write_text("\n".join(log_lines), encoding="utf-8", errors="replace")
        paths.scribe.write_text("\n".join(scribe_lines), encoding="utf-8", errors="replace")
        events = recall(paths, scribe_lines=40)
        assert events[0] == step(1)
        stream = LossStream()
        for e in events:  # what the app would render of them renders
            if isinstance(e, ScribeEvent):
                assert comment(e).plain
            elif isinstance(e, StepEvent | EvalEvent):
                assert stream.format(e) is not None
