"""`babyterm serve` with the official openai and ollama clients against a live server over a tiny baby."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest
import torch

from babyterm.server.bridge import MAX_TOKENS
from babyterm.server.serve import ServerThread
from school.commands import Chat
from school.events import ChatEvent, Event
from school.framing import cut_reply, frame
from school.observer import Observer
from school.options import TrainOptions
from school.revive import SavedBaby, revive
from school.speaker import Speaker
from tests.baby_factory import make_baby
from tests.conftest import DATA
from tests.test_tutor import make_tutor, wait_for

HELLO = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello, who are you?"}]


class Served:
    def __init__(self, home: Path, observer: Observer, server: ServerThread, events: list[Event]) -> None:
        self.home, self.observer, self.server, self.events = home, observer, server, events
        self.openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=30, max_retries=0)
        self.ollama = ollama.Client(host=server.url, timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served")
    library = tmp / "library.txt"
    library.write_text((DATA / "tinyshakespeare-start.txt").read_text(encoding="utf-8")[:60_000])
    home = tmp / "home"
    make_baby(home, library, "baby")
    observer = Observer(TrainOptions(baby="baby", home=str(home)))
    events: list[Event] = []
    observer.subscribe(events.append)
    alive = threading.Event()
    alive.set()
    thread = threading.Thread(target=observer.run, args=(alive.is_set,), daemon=True)
    thread.start()
    server = ServerThread(observer, "baby", port=0)
    server.start()
    try:
        yield Served(home, observer, server, events)
    finally:
        server.stop()
        alive.clear()
        thread.join(10)


def greedy_reply(home: Path, text: str, max_tokens: int) -> str:
    """What `babyterm chat` says to `text` at temperature 0, cut where a reply ends."""
    from soul.paths import baby_paths

    paths = baby_paths("baby", str(home))
    speaker = Speaker(SavedBaby(paths, revive(paths), lambda m: None))
    said: list[str] = []
    speaker.answer(
        Chat(id="direct", text=text, max_tokens=max_tokens, temperature=0), lambda t, w: said.append(t)
    )
    return cut_reply("".join(said))[0]


def test_openai_client_lists_completes_and_chats_on_the_one_chat_path(served: Served) -> None:
    torch.set_num_threads(1)
    client = served.openai
    assert [m.id for m in client.models.list().data] == ["baby"]

    chat = client.chat.completions.create(model="baby", messages=HELLO, max_tokens=24, temperature=0)
    framed = frame([(m["role"], m["content"]) for m in HELLO]).removesuffix("\n")
    expected = greedy_reply(served.home, framed, 24)
    assert chat.choices[0].message.content == expected
    assert chat.choices[0].message.role == "assistant"
    assert 0 < chat.usage.completion_tokens <= 24
    assert chat.usage.prompt_tokens > 0
    assert chat.choices[0].finish_reason in ("stop", "length")

    pieces = client.chat.completions.create(
        model="baby", messages=HELLO, max_tokens=24, temperature=0, stream=True
    )
    chunks = list(pieces)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == chat.choices[0].finish_reason

    done = client.completions.create(model="baby", prompt="Hello", max_tokens=12, temperature=0)
    assert done.choices[0].text == greedy_reply(served.home, "Hello", 12)
    streamed = client.completions.create(
        model="baby", prompt="Hello", max_tokens=12, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == done.choices[0].text

    replies = [e for e in served.events if isinstance(e, ChatEvent) and e.final and e.source == "http"]
    assert len(replies) >= 4 and all(e.reply_id.startswith("http-") for e in replies)


def test_max_tokens_above_the_cap_is_clamped_and_stop_strings_cut(served: Served) -> None:
    client = served.openai
    for prompt in ("To be", "Hello", "First Citizen:", "What say you?", "O"):  # one with a longer reply
        whole = client.completions.create(model="baby", prompt=prompt, max_tokens=10**6, temperature=0)
        assert whole.usage.completion_tokens <= MAX_TOKENS
        text = whole.choices[0].text
        if len(text) >= 4:
            break
    assert len(text) >= 4, text
    stop = text[2:4]
    cut = client.completions.create(model="baby", prompt=prompt, max_tokens=10**6, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_ollama_client_lists_shows_generates_and_chats(served: Served) -> None:
    client = served.ollama
    assert [m.model for m in client.list().models] == ["baby:latest"]
    shown = client.show("baby")
    assert '"\\n\\n"' in shown.parameters and "{{ .Content }}" in (shown.template or "")
    assert shown.details.family == "babyterm"

    options = {"temperature": 0, "num_predict": 16}
    generated = client.generate(model="baby", prompt="Hello", options=options)
    assert generated.done and generated.response == greedy_reply(served.home, "Hello", 16)
    assert 0 < generated.eval_count <= 16

    messages = HELLO
    said = client.chat(model="baby:latest", messages=messages, options=options)
    framed = frame([(m["role"], m["content"]) for m in HELLO]).removesuffix("\n")
    assert said.message.content == greedy_reply(served.home, framed, 16)

    parts = list(client.chat(model="baby", messages=messages, options=options, stream=True))
    assert parts[-1].done and parts[-1].eval_count == said.eval_count
    assert not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == said.message.content

    streamed = list(client.generate(model="baby", prompt="Hello", options=options, stream=True))
    assert "".join(p.response for p in streamed) == generated.response

    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="someone-else", messages=messages)
    assert refused.value.status_code == 404


def test_train_serve_answers_from_the_live_weights_between_steps(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    events: list[Event] = []
    tutor.subscribe(events.append)
    server = ServerThread(tutor, "baby", port=0, duty=0.5)
    alive = threading.Event()
    alive.set()
    thread = threading.Thread(target=tutor.run, args=(alive.is_set,), daemon=True)
    thread.start()
    server.start()
    try:
        wait_for(lambda: tutor.step >= 2)
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=60, max_retries=0)
        reply = client.chat.completions.create(
            model="baby", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
        )
        assert reply.usage.completion_tokens > 0
        final = [e for e in events if isinstance(e, ChatEvent) and e.final and e.source == "http"]
        assert len(final) == 1 and final[0].weights.startswith("live (step ")
        step_then = tutor.step
        wait_for(lambda: tutor.step > step_then)  # and training goes on
    finally:
        alive.clear()
        thread.join(30)
        server.stop()
    assert not thread.is_alive()
