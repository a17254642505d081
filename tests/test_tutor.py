"""The tutor: learning, exact resume, commands, chat, corrections and the scribe's lines in the batches."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from school.commands import CancelChat, Chat, Correct, Pause, Resume, Save, Stop
from school.compiler import Compiled
from school.events import ChatEvent, EvalEvent, Event, GuessEvent, SaveEvent, StateEvent, StepEvent
from school.options import TrainOptions
from school.tokenizer import BOS_ID
from school.tutor import Tutor
from soul.jsonl import read_jsonl
from soul.paths import SoulError

TINY_BRAINS = {
    "transformer": dict(dim=32, n_layers=2, n_heads=2, max_seq_len=32),
    "babyllm": dict(embed_dim=32, n_neurons=64, max_seq_len=32),
}
FAST = dict(
    batch_size=8,
    warmup_steps=5,
    lr=3e-3,
    log_every=5,
    eval_every=20,
    eval_batches=2,
    guess_every=10,
    save_every=10_000,
    save_minutes=60.0,
)


def wait_for(pred: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll until `pred()` holds (a trainer in another thread gets there in its own time)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def make_tutor(
    library: Path, brain: str = "transformer", baby: str = "baby", precision: str = "fp32", **syllabus
) -> Tutor:
    torch.set_num_threads(1)
    options = TrainOptions(
        baby=baby,
        library=str(library),
        brain=brain,
        preset="tiny",
        vocab_size=300,
        threads=1,
        precision=precision,
    )
    return Tutor(
        options,
        clock=lambda: 1_700_000_000.0,
        syllabus_overrides={**FAST, **syllabus},
        brain_overrides=TINY_BRAINS[brain],
    )


def collect(tutor: Tutor) -> list[Event]:
    events: list[Event] = []
    tutor.subscribe(events.append)
    return events


@pytest.mark.parametrize("brain", ["transformer", "babyllm"])
def test_loss_falls_on_repeated_text(tmp_path: Path, brain: str) -> None:
    library = tmp_path / "repeat.txt"
    library.write_text("the cat sat on the mat and the dog ate the log. " * 400, encoding="utf-8")
    tutor = make_tutor(library, brain)
    tutor.prepare()
    losses = [tutor.train_step()["loss"] for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize("brain", ["transformer", "babyllm"])
def test_bf16_autocast_learns_and_keeps_fp32_weights(tmp_path: Path, brain: str) -> None:
    library = tmp_path / "repeat.txt"
    library.write_text("the cat sat on the mat and the dog ate the log. " * 400, encoding="utf-8")
    tutor = make_tutor(library, brain, precision="bf16")
    tutor.prepare()
    assert json.loads(tutor.room.hello(tutor.model))["precision"] == "bf16"
    with tutor.room.autocast():  # the training forward really runs its matmuls in bf16
        logits, _ = tutor.model(torch.randint(0, tutor.model.config.vocab_size, (1, 8)))
    assert logits.dtype == torch.bfloat16
    losses = [tutor.train_step()["loss"] for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert all(p.dtype == torch.float32 for p in tutor.model.parameters())
    assert tutor.pixel.dtype == torch.float32  # fed to fp32 chat generation outside autocast
    events = collect(tutor)
    tutor.handle(Chat(id="r1", text="the cat", max_tokens=8, temperature=0))
    final = [e for e in events if isinstance(e, ChatEvent) and e.final]
    assert final and len(final[0].tokens) >= 1


def test_run_emits_every_kind_and_logs_them(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.options.steps = 40
    events = collect(tutor)
    tutor.run()
    kinds = {e.kind for e in events}
    assert {"step", "eval", "guess", "pixel", "save", "state"} <= kinds
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(5, 41, 5))
    assert all(0 <= c <= 1 for e in steps for c in (*e.pixel_pred, *e.pixel_target))
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert evals and all(e.val_bpb > 0 for e in evals)
    guess = next(e for e in events if isinstance(e, GuessEvent))
    assert guess.truth and 0 <= guess.match <= 1
    logged = list(read_jsonl(next(tutor.paths.logs.glob("*.jsonl"))))
    assert {r["kind"] for r in logged} >= {"step", "eval", "save"}
    assert all({"time", "run", "step", "kind"} <= set(r) for r in logged)


def test_resume_is_exact(small_library: Path) -> None:
    """Save, then: the next step of the running tutor == the next step of a tutor loaded from the save."""
    a = make_tutor(small_library)
    a.prepare()
    for _ in range(7):
        a.train_step()
    a.save("manual")
    x = torch.randint(0, a.model.config.vocab_size, (2, 16))
    logits_a = a.model(x)[0]
    next_a = a.train_step()

    b = make_tutor(small_library)
    b.prepare()
    assert b.step == 7
    assert torch.equal(b.model(x)[0], logits_a)
    next_b = b.train_step()
    assert next_b == next_a
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_commands_pause_resume_save_stop(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    events = collect(tutor)
    thread = threading.Thread(target=tutor.run)
    thread.start()

    wait_for(lambda: tutor.step >= 3)
    tutor.send(Pause())
    wait_for(lambda: tutor.state == "paused")
    frozen = tutor.step
    threading.Event().wait(0.3)
    assert tutor.step == frozen  # paused really stops steps
    tutor.send(Save())
    wait_for(lambda: any(isinstance(e, SaveEvent) and e.reason == "manual" for e in events))
    tutor.send(Resume())
    wait_for(lambda: tutor.step > frozen + 2)
    tutor.send(Stop())
    thread.join(60)
    assert not thread.is_alive()
    states = [e.state for e in events if isinstance(e, StateEvent)]
    assert "paused" in states and states[-1] == "stopped"
    assert any(isinstance(e, SaveEvent) and e.reason == "stop" for e in events)


def test_chat_streams_a_reply_and_a_correction_becomes_training_text(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    events = collect(tutor)
    tutor.handle(Chat(id="r1", text="To be, or not", max_tokens=12, seed=1))
    chat = [e for e in events if isinstance(e, ChatEvent)]
    assert chat[-1].final and chat[-1].reply_id == "r1"
    assert "".join(e.text for e in chat[:-1]).strip() == chat[-1].text.strip()
    assert len(chat[-1].tokens) >= 1 and all(0 < t["prob"] <= 1 for t in chat[-1].tokens)

    tutor.handle(Correct(id="r1", text="that is the question"))
    history = list(read_jsonl(tutor.paths.chat))
    assert [h["role"] for h in history] == ["you", "baby", "correction"]
    ids = tutor.librarian.encode("that is the question")
    assert _appears_in_batches(tutor, ids)


def test_chat_cancel_stops_a_reply(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    events = collect(tutor)
    tutor.send(CancelChat(id="r2"))  # already waiting when the reply starts
    tutor.handle(Chat(id="r2", text="hello", max_tokens=500, temperature=1.0))
    final = [e for e in events if isinstance(e, ChatEvent) and e.final][-1]
    assert len(final.tokens) == 1


def test_a_chat_waiting_mid_step_is_answered_there_with_the_last_steps_weights(small_library: Path) -> None:
    """A reply does not wait out the step under way (a 1 MB step is ~200 ms on 2 cores): it is
    answered at the step's next pause (after a layer, or between the forward and the backward),
    before the optimizer moves anything."""
    tutor = make_tutor(small_library)
    tutor.prepare()
    tutor.train_step()
    weights = [p.detach().clone() for p in tutor.model.parameters()]
    heard: list[tuple[int, bool, bool]] = []  # (step, weights unmoved, dropout's mode around it)

    def on(e: Event) -> None:
        if isinstance(e, ChatEvent) and e.final:
            same = all(torch.equal(p, w) for p, w in zip(tutor.model.parameters(), weights, strict=True))
            heard.append((e.step, same, tutor.model.training))

    tutor.subscribe(on)
    tutor.send(Chat(id="m1", text="To be", max_tokens=4, temperature=0))
    tutor.train_step()
    assert heard == [(1, True, True)] and tutor.step == 2
    assert not all(torch.equal(p, w) for p, w in zip(tutor.model.parameters(), weights, strict=True))
    assert tutor.model.training  # the reply left the step's dropout on

    # a pause first in line keeps its place: nothing jumps it mid-step, and the order holds
    tutor.send(Pause())
    tutor.send(Chat(id="m2", text="To be", max_tokens=4, temperature=0))
    tutor.train_step()
    assert len(heard) == 1
    assert [type(tutor.inbox.next()) for _ in range(2)] == [Pause, Chat]

    # and an evaluation (many batches) answers between them, in eval mode, scoring as it would alone
    alone = tutor.evaluate()
    tutor.send(Chat(id="m3", text="To be", max_tokens=4, temperature=0))
    with_chat = tutor.evaluate()
    assert [(step, training) for step, _, training in heard] == [(1, True), (3, False)]
    assert (with_chat.val_bpb, with_chat.train_bpb) == (alone.val_bpb, alone.train_bpb)
    assert tutor.model.training


def test_a_chat_sent_during_the_backward_is_answered_between_its_layers(small_library: Path) -> None:
    """The step pauses after every layer, in the backward too: a chat that arrives there waits for
    one layer's work, not for the rest of the step (the embeddings' gradient comes last)."""
    tutor = make_tutor(small_library)
    tutor.prepare()
    tutor.train_step()
    layers, calls, order = tutor.model.config.n_layers, 0, []
    pause = tutor.model.pause
    assert pause is not None

    def pausing() -> None:
        nonlocal calls
        calls += 1
        if calls == layers + 1:  # the backward's first pause: the forward made one per layer
            order.append("sent")
            tutor.send(Chat(id="b1", text="To be", max_tokens=3, temperature=0))
        pause()

    tutor.model.pause = pausing
    tutor.subscribe(lambda e: order.append("answered") if isinstance(e, ChatEvent) and e.final else None)
    tutor.model.tok_embeddings.weight.register_hook(lambda _grad: order.append("embeddings' gradient"))
    tutor.train_step()
    assert calls == 2 * layers
    assert order == ["sent", "answered", "embeddings' gradient"]


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_a_reply_failing_mid_step_is_not_taken_for_a_compile_failure(small_library: Path, where: str) -> None:
    """A compiled step's first forward and backward fall back to eager steps on any error, taking
    it for the compiler's: a reply's own error raised in a pause there must surface as itself."""
    tutor = make_tutor(small_library)
    tutor.prepare()
    fallbacks: list[str] = []
    compiled = Compiled(tutor.model, on_fallback=fallbacks.append)
    compiled.fn = tutor.model  # as a compiled step at its first call, without the minutes of compiling
    tutor.learner = compiled
    layers, calls = tutor.model.config.n_layers, 0
    pause = tutor.model.pause
    assert pause is not None

    def pausing() -> None:
        nonlocal calls
        calls += 1
        if calls == (1 if where == "forward" else layers + 1):
            tutor.send(Chat(id="c1", text="To be", max_tokens=3, temperature=0))
        pause()

    def broken_reply(command: Chat) -> None:
        raise RuntimeError("a bug in a reply")

    tutor.model.pause = pausing
    tutor.speaker.reply = broken_reply  # type: ignore[method-assign]
    before = [p.detach().clone() for p in tutor.model.parameters()]
    with pytest.raises(RuntimeError, match="a bug in a reply"):
        tutor.train_step()
    assert fallbacks == [] and compiled.fn is not None
    assert all(torch.equal(a, b) for a, b in zip(before, tutor.model.parameters(), strict=True))


def test_chatting_leaves_trainings_random_draws_alone(small_library: Path) -> None:
    """A sampled reply, and an earlier self's brain built to give one, draw nothing training would."""
    tutor = make_tutor(small_library)
    tutor.prepare()
    tutor.train_step()
    tutor.save_milestone()
    events = collect(tutor)
    state = torch.get_rng_state()
    tutor.handle(Chat(id="l", text="To be", max_tokens=6, temperature=1.0))
    tutor.handle(Chat(id="m", text="To be", max_tokens=6, temperature=1.0, weights=str(tutor.step)))
    finals = [e for e in events if isinstance(e, ChatEvent) and e.final]
    assert [e.weights for e in finals] == ["live (step 1)", "milestone step 1"]
    assert torch.equal(torch.get_rng_state(), state)


def test_scribe_lines_reach_the_batches(small_library: Path) -> None:
    tutor = make_tutor(small_library, scribe_max_share=0.5)  # the share it has written, up to half
    tutor.prepare()
    assert tutor.librarian.scribe_max_share == 0.5
    for _ in range(30):
        tutor.librarian.add_text("zebra quantum xylophone " * 8, "scribe")
    assert _appears_in_batches(tutor, tutor.librarian.encode("zebra quantum xylophone"))


def _appears_in_batches(tutor: Tutor, ids: list[int]) -> bool:
    needle = torch.tensor(ids[: min(len(ids), 4)])
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        x, _ = tutor.librarian.batch(8, 32, gen, 0.5)
        windows = x.unfold(1, len(needle), 1)
        if (windows == needle).all(-1).any():
            return True
    return False


def test_existing_baby_refuses_another_brain(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    tutor.save("manual")
    other = make_tutor(small_library, brain="babyllm")
    with pytest.raises(SoulError, match="--baby"):
        other.prepare()


def test_one_baby_one_trainer(small_library: Path) -> None:
    import os

    first = make_tutor(small_library)
    first.options.steps = 10_000
    thread = threading.Thread(target=first.run)
    thread.start()
    try:
        wait_for(lambda: first.step >= 2)
        second = make_tutor(small_library)
        with pytest.raises(SoulError, match=f"process {os.getpid()}"):
            second.run()
    finally:
        first.send(Stop())
        thread.join(60)
    third = make_tutor(small_library)  # the lock went with the first trainer
    third.options.steps = 1
    third.run()
    assert third.step == first.step + 1


def test_evaluate_scores_the_held_out_tail_without_dropout(tmp_path: Path, small_library: Path) -> None:
    """bits/byte = nats over every scored held-out token / ln 2 / the UTF-8 bytes of that text."""
    import math

    import numpy as np

    from school import tokenizer as T

    tutor = make_tutor(small_library, eval_batches=1000)
    tutor.brain_overrides = {**TINY_BRAINS["transformer"], "dropout": 0.5}
    tutor.prepare()
    tutor.train_step()
    first, again = tutor.evaluate(), tutor.evaluate()
    assert tutor.model.config.dropout == 0.5
    assert first.val_bpb == again.val_bpb and tutor.model.training  # eval mode inside, train after
    lb, width = tutor.librarian, tutor.block_size
    text = small_library.read_text(encoding="utf-8")
    ids = [T.BOS_ID, *lb.encode(text), T.EOS_ID]
    tail = np.asarray(ids[len(ids) - max(1, math.floor(len(ids) * 0.1)) :])
    np.testing.assert_array_equal(lb.val, tail)  # the library's own last 10%, never trained on
    count = (len(tail) - 1) // width
    nats = 0.0
    tutor.model.eval()
    with torch.no_grad():
        for w in range(count):
            window = torch.from_numpy(tail[w * width : (w + 1) * width + 1].astype(np.int64))[None]
            logp = torch.log_softmax(tutor.model(window[:, :-1])[0][0].float(), -1)
            nats -= logp.gather(1, window[0, 1:, None]).sum().item()
    scored = lb.decode(tail[1 : count * width + 1].tolist(), continuation=True)
    assert scored in text
    assert first.val_bpb == pytest.approx(nats / math.log(2) / len(scored.encode("utf-8")), rel=1e-4)


def test_a_new_babys_prompts_start_with_bos_as_its_documents_do(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    assert tutor.record.bos_prompt
    tutor.handle(Chat(id="b1", text="To be, or not", max_tokens=3, temperature=0))
    ids = tutor.speaker.insights["b1"]["ids"]
    assert ids[0] == BOS_ID and ids[1:].count(BOS_ID) == 0


def test_eval_scores_its_own_text_in_the_same_pass_without_dropout(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    for _ in range(5):
        tutor.train_step()
    event = tutor.evaluate()
    assert tutor.model.training  # back to training after the pass
    tutor.model.eval()
    nats, n_bytes = 0.0, 0.0
    with torch.no_grad():
        for x, y in tutor.librarian.held_in_batches(tutor.syllabus.batch_size, tutor.block_size, 1):
            logits, _ = tutor.model(x)
            nats += torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="sum"
            ).item()
            n_bytes += tutor.librarian.scored_bytes(tutor.librarian.token_bytes, x, y).item()
    assert event.train_bpb == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-4)
    assert event.val_bpb != pytest.approx(event.train_bpb)  # two different texts
