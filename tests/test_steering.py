"""Steering a token and the x-ray's learning record, through the tutor and the observer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from school.commands import Chat, Steer, Stop, Teach, XRayRequest
from school.events import ChatEvent, ErrorEvent, TaughtEvent, XRayEvent
from school.observer import Observer
from school.options import TrainOptions
from soul.milestones import read_manifest
from tests.test_tutor import collect, make_tutor


def _final(events, reply_id: str) -> ChatEvent:
    return next(e for e in events if isinstance(e, ChatEvent) and e.final and e.reply_id == reply_id)


@pytest.fixture
def taught(tmp_path: Path):
    library = tmp_path / "repeat.txt"
    library.write_text("the cat sat on the mat and the dog ate the log. " * 300, encoding="utf-8")
    tutor = make_tutor(library)
    tutor.prepare()
    for _ in range(10):
        tutor.train_step()
    return tutor


def test_steer_is_deterministic_and_teaching_is_followed(taught) -> None:
    tutor = taught
    events = collect(tutor)
    tutor.handle(Chat(id="r1", text="the cat", max_tokens=12, temperature=0))
    reply = _final(events, "r1")
    assert len(reply.tokens) >= 3
    alt = next(i for i, _, _ in reply.tokens[1]["top"] if i != reply.tokens[1]["id"])
    tutor.handle(Steer(id="s1", reply_id="r1", index=1, token_id=alt))
    tutor.handle(Steer(id="s2", reply_id="r1", index=1, token_id=alt))
    one, two = _final(events, "s1"), _final(events, "s2")
    assert one.text == two.text and [t["id"] for t in one.tokens] == [t["id"] for t in two.tokens]
    assert one.tokens[0]["id"] == reply.tokens[0]["id"]  # before the steer, the reply is kept
    assert one.tokens[1]["id"] == alt and one.tokens[1]["steered"]
    prob = next(p for i, p, _ in reply.tokens[1]["top"] if i == alt)
    assert one.tokens[1]["prob"] == pytest.approx(prob, abs=1e-4)  # its chance where it was steered

    tutor.handle(Teach(id="s1"))
    first = [e for e in events if isinstance(e, TaughtEvent)]
    assert len(first) == 1 and first[0].after is None and first[0].token_id == alt
    tutor.options.steps = 10
    tutor.run()
    done = [e for e in events if isinstance(e, TaughtEvent) and e.after is not None]
    assert len(done) == 1 and done[0].steps == 10 and done[0].step == 20
    assert done[0].before == first[0].before and 0 <= done[0].after <= 1

    # the logged steps recorded their update sizes: in the checkpoint's state and with milestones
    assert tutor.updates is not None and tutor.updates["step"] == 20
    assert set(tutor.updates["updates"]) >= {"layers.0", "layers.1", "tok_embeddings"}
    assert all(v > 0 for v in tutor.updates["updates"].values())
    state = json.loads(next(tutor.paths.checkpoints.glob("*/state.json")).read_text())
    assert state["updates"]["step"] == 20
    tutor.save_milestone()
    assert read_manifest(tutor.paths.milestones)[20].updates == tutor.updates
    tutor.handle(XRayRequest(id="x1", text="the cat", weights=20))
    shot = next(e for e in events if isinstance(e, XRayEvent))
    assert shot.error == "" and shot.xray["learning"]["step"] == 20
    assert shot.xray["tokens"][1]["piece"].strip() == "the"


def test_unknown_steers_and_bad_xrays_are_one_line(taught) -> None:
    tutor = taught
    events = collect(tutor)
    tutor.handle(Steer(id="s1", reply_id="nope", index=0, token_id=5))
    tutor.handle(Teach(id="nope"))
    tutor.handle(XRayRequest(id="x1", text="the", weights=999))
    warnings = [e.message for e in events if isinstance(e, ErrorEvent)]
    assert any("cannot steer" in w for w in warnings) and any("nothing to teach" in w for w in warnings)
    bad = next(e for e in events if isinstance(e, XRayEvent))
    assert bad.error and not bad.xray


def test_watching_steers_but_cannot_teach(taught) -> None:
    taught.save("manual")
    watcher = Observer(TrainOptions(baby="baby"))
    events = collect(watcher)
    for command in (
        Chat(id="r1", text="the cat", max_tokens=6, temperature=0),
        Steer(id="s1", reply_id="r1", index=0, token_id=100),
        Teach(id="s1"),
        XRayRequest(id="x1", text="the cat sat"),
        Stop(),
    ):
        watcher.send(command)
    watcher.run()
    assert _final(events, "s1").tokens[0]["id"] == 100
    assert not any(isinstance(e, TaughtEvent) for e in events)
    assert any(isinstance(e, ErrorEvent) and "not taught" in e.message for e in events)
    shot = next(e for e in events if isinstance(e, XRayEvent))
    assert shot.error == "" and shot.xray["brain"] == "transformer"
