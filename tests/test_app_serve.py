"""Serving from the app: the key and palette entry, the address in the status bar, outside replies in
the chat pane, and the trainer process's relay that starts the server beside the tutor."""

from __future__ import annotations

import queue
from pathlib import Path

import httpx
import pytest

from babyterm.app import BabytermApp
from babyterm.serving import ServeRelay
from babyterm.widgets.chat import ChatMessage
from babyterm.widgets.status_bar import StatusBar
from school.commands import Chat, Serve
from school.events import ChatEvent, Event, ServeEvent
from school.options import TrainOptions
from tests.fake_host import FakeHost
from tests.fake_link import FakeLink, until
from tests.test_tutor import wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BABYTERM_HOME", str(tmp_path))
    return tmp_path


def status_text(app: BabytermApp) -> str:
    return " ".join(str(label.content) for label in app.main_screen.query_one(StatusBar).query("Label"))


async def test_w_serves_and_the_status_bar_and_chat_pane_show_it(home: Path) -> None:
    link = FakeLink(auto=False)
    async with BabytermApp(TrainOptions(), link=link).run_test(size=(120, 36)) as pilot:
        await pilot.press("w")
        assert link.commands("serve") == [Serve()]
        link.emit(ServeEvent(3, "http://127.0.0.1:8000"))
        await until(pilot, lambda: "⇄ 127.0.0.1:8000" in status_text(pilot.app))

        link.emit(ChatEvent(3, "http-1", "hel", source="http"))
        link.emit(ChatEvent(3, "http-1", "hello", final=True, source="http"))
        link.emit(ChatEvent(3, "app-1", "mine", final=True))
        await until(pilot, lambda: len(pilot.app.main_screen.query(ChatMessage)) >= 2)
        notes = {m.reply_id: m.note for m in pilot.app.main_screen.query(ChatMessage)}
        assert notes["http-1"] == "to an HTTP client" and notes["app-1"] == ""

        await pilot.press("w")  # again: stop serving
        assert link.commands("serve")[-1] == Serve(stop=True)
        link.emit(ServeEvent(3, ""))
        await until(pilot, lambda: "⇄" not in status_text(pilot.app))


async def test_the_palette_offers_serving(home: Path) -> None:
    app = BabytermApp(TrainOptions(), link=FakeLink(auto=False))
    async with app.run_test(size=(120, 36)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Serve over HTTP" in titles


def test_the_relay_starts_a_server_beside_the_host_and_passes_other_commands_on() -> None:
    host, source = FakeHost(), queue.Queue()
    said: list[Event] = []
    relay = ServeRelay(source, host, "baby", said.append, duty=1.0)
    relay.start()
    try:
        source.put(Serve(port=0).to_dict())
        wait_for(lambda: bool(said), 10)
        (started,) = said
        assert (
            isinstance(started, ServeEvent)
            and started.url.startswith("http://127.0.0.1:")
            and not started.error
        )
        body = {"model": "baby", "prompt": "hi", "max_tokens": 2}
        reply = httpx.post(f"{started.url}/v1/completions", json=body, timeout=10)
        assert reply.json()["choices"][0]["text"] == "la la "

        source.put(Chat(id="from-app", text="hello", max_tokens=1).to_dict())
        wait_for(lambda: any(c.id == "from-app" for c in host.chats()), 10)

        source.put({"kind": "serve", "port": "eighty"})
        wait_for(lambda: len(said) == 2, 10)
        assert "command refused" in said[1].error

        source.put(Serve(stop=True).to_dict())
        wait_for(lambda: len(said) == 3, 10)
        assert said[2].url == "" and relay.server is None
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{started.url}/v1/completions", json=body, timeout=5)
    finally:
        relay.stop()
        host.stop()
