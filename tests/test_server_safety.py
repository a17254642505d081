"""The server's manners: loopback by default, the key, refusals by size and shape, the queue, fuzz."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from babyterm.cli import main
from babyterm.server.errors import MAX_BODY
from babyterm.server.queue import ReplySlot
from babyterm.server.serve import ServeError, ServerThread, bind, check_host
from tests.fake_host import FakeHost
from tests.test_tutor import wait_for

CHAT = {"model": "baby", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeHost, ServerThread]]:
    host = FakeHost()
    server = ServerThread(host, "baby", port=0)
    server.start()
    yield host, server
    server.stop()
    host.stop()


@pytest.fixture
def client(fake: tuple[FakeHost, ServerThread]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake[1].url, timeout=10) as c:
        yield c


def test_bodies_over_a_megabyte_get_413_in_each_face_shape(client: httpx.Client) -> None:
    big = b'{"model": "baby", "prompt": "' + b"a" * MAX_BODY + b'"}'
    r = client.post("/v1/completions", content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    r = client.post("/api/generate", content=big)
    assert r.status_code == 413 and isinstance(r.json()["error"], str)
    chunked = client.post("/v1/completions", content=iter([b"a" * 400_000] * 3))  # no length declared
    assert chunked.status_code == 413


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", b"{not json", None),
        ("/v1/chat/completions", b"[1, 2]", None),
        ("/v1/chat/completions", {**CHAT, "messages": "hi"}, "messages"),
        (
            "/v1/chat/completions",
            {**CHAT, "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            "/v1/chat/completions",
            {**CHAT, "messages": [{"role": "user", "content": None}]},
            "messages[0].content",
        ),
        ("/v1/chat/completions", {**CHAT, "temperature": "hot"}, "temperature"),
        ("/v1/chat/completions", {**CHAT, "temperature": 5}, "temperature"),
        ("/v1/chat/completions", {**CHAT, "max_tokens": 0}, "max_tokens"),
        ("/v1/chat/completions", {**CHAT, "max_tokens": 2.5}, "max_tokens"),
        ("/v1/chat/completions", {**CHAT, "top_p": 1.5}, "top_p"),
        ("/v1/chat/completions", {**CHAT, "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {**CHAT, "stop": [1]}, "stop"),
        ("/v1/chat/completions", {**CHAT, "n": 3}, "n"),
        ("/v1/completions", {"model": "baby", "prompt": 7}, "prompt"),
        ("/v1/completions", {"prompt": "hi"}, "model"),
    ],
)
def test_bad_openai_requests_get_400_with_an_openai_error_body(
    client: httpx.Client, path: str, body: object, param: str | None
) -> None:
    r = client.post(path, content=body if isinstance(body, bytes) else json.dumps(body))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    assert "e+" not in error["message"]  # 2,147,483,648, not 2.14748e+09


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        {"model": "baby", "prompt": "hi", "options": {"top_k": -1}},
        {"model": "baby", "prompt": "hi", "options": {"temperature": True}},
        {"model": "baby", "prompt": "hi", "options": {"repeat_penalty": 0}},
        {"model": "baby", "prompt": "hi", "options": "hot"},
        {"model": "baby", "prompt": ["hi"]},
    ],
)
def test_bad_ollama_requests_get_400_with_an_ollama_error_body(client: httpx.Client, body: object) -> None:
    r = client.post("/api/generate", content=body if isinstance(body, bytes) else json.dumps(body))
    assert r.status_code == 400, r.text
    assert list(r.json()) == ["error"] and isinstance(r.json()["error"], str)
    assert "\n" not in r.json()["error"]


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={**CHAT, "frobnicate": {"deep": [1]}, "logit_bias": {}})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "la la la "
    r = client.post(
        "/api/chat", json={**CHAT, "stream": False, "keep_alive": "5m", "options": {"mirostat": 2}}
    )
    assert r.status_code == 200 and r.json()["done"] is True


def test_the_key_is_checked_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost()
    server = ServerThread(host, "baby", port=0, key="s3cret")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                r = c.post("/v1/chat/completions", json=CHAT, headers=headers)
                assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
            assert c.get("/api/tags").status_code == 401
            assert isinstance(c.get("/api/tags").json()["error"], str)
            ok = c.get("/api/tags", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
        good = openai.OpenAI(base_url=f"{server.url}/v1", api_key="s3cret", max_retries=0, timeout=10)
        assert [m.id for m in good.models.list().data] == ["baby"]
    finally:
        server.stop()
        host.stop()


def test_listening_off_loopback_needs_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ServeError, match="API key"):
        check_host("0.0.0.0", None)
    check_host("0.0.0.0", "k")
    check_host("::1", None)
    check_host("localhost", None)
    assert main(["serve", "--host", "192.168.1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "API key" in err and "Traceback" not in err


def test_a_busy_port_is_one_line(isolated_home, capsys: pytest.CaptureFixture[str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ServeError, match="in use"):
            ServerThread(FakeHost(), "baby", port=port)
        soul = isolated_home / "babies" / "baby"
        soul.mkdir(parents=True)
        (soul / "config.json").write_text("{}")  # enough to be found; the port is refused before it is read
        assert main(["serve", "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in use" in err and "something else using it" in err
    finally:
        taken.close()


def test_an_address_this_machine_lacks_is_said_so() -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it, so binding there is EADDRNOTAVAIL
    with pytest.raises(ServeError, match="no such address") as refused:
        bind("192.0.2.1", 0)
    assert "something else using it" not in str(refused.value)


def test_a_client_that_leaves_mid_stream_frees_its_slot() -> None:
    host = FakeHost(delay=0.05)
    server = ServerThread(host, "baby", port=0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            body = {**CHAT, "max_tokens": 400, "stream": True}
            with c.stream("POST", "/v1/chat/completions", json=body) as r:
                next(r.iter_lines())  # the reply has begun; now hang up
            wait_for(lambda: len(host.chats()) == 1 and host.chats()[0].id in host.cancelled(), 10)
            after = c.post("/v1/chat/completions", json=CHAT)
            assert (
                after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == "la la la "
            )
    finally:
        server.stop()
        host.stop()


def test_requests_are_answered_first_come_first_served() -> None:
    host = FakeHost(delay=0.02)
    server = ServerThread(host, "baby", port=0)
    server.start()
    done: dict[int, str] = {}

    def ask(i: int, tokens: int) -> None:
        body = {"model": "baby", "prompt": f"client {i}", "max_tokens": tokens}
        done[i] = httpx.post(f"{server.url}/v1/completions", json=body, timeout=30).json()["choices"][0][
            "text"
        ]

    try:
        threads = [threading.Thread(target=ask, args=(0, 40))]
        threads[0].start()
        wait_for(lambda: len(host.chats()) == 1, 10)
        for i in range(1, 5):
            threads.append(threading.Thread(target=ask, args=(i, 2)))
            threads[-1].start()
            wait_for(lambda i=i: server.bridge.slot.waiting == i, 10)  # i is in the line
        for t in threads:
            t.join(30)
        assert [c.text for c in host.chats()] == [f"client {i}" for i in range(5)]
        assert done == {0: "la " * 40, **{i: "la la " for i in range(1, 5)}}
    finally:
        server.stop()
        host.stop()


async def test_the_slot_rests_after_a_reply_when_it_shares_the_clock() -> None:
    now = [0.0]
    slot = ReplySlot(duty=0.5, clock=lambda: now[0])
    async with slot.turn():
        second = asyncio.ensure_future(slot.turn().__aenter__())
        await asyncio.sleep(0)
        now[0] += 0.05  # a reply of 50 ms: the slot rests 50 ms before the next
    await asyncio.sleep(0)
    assert not second.done() and slot.waiting == 1
    now[0] += 0.05
    await asyncio.wait_for(second, 2)
    with pytest.raises(ValueError):
        ReplySlot(duty=0)


ROUTES = ["/v1/chat/completions", "/v1/completions", "/api/generate", "/api/chat", "/api/show"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "model",
    "messages",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "seed",
    "n",
    "options",
    "system",
    "name",
    "max_completion_tokens",
]
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "system", "assistant", "x"]),
        "content": st.text(max_size=30) | json_values,
    }
)
body = st.dictionaries(
    st.sampled_from(FIELDS),
    json_values
    | st.just("baby")
    | st.lists(message, max_size=3)
    | st.integers(0, 20)
    | st.fixed_dictionaries(
        {},
        optional={
            "num_predict": st.integers(-3, 20),
            "temperature": json_values,
            "top_k": json_values,
            "stop": json_values,
            "seed": json_values,
        },
    ),
    max_size=8,
).map(lambda b: {"model": "baby", **b} if "model" not in b else b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), payload=body | st.binary(max_size=40).map(lambda b: {"__raw__": b}))
def test_fuzzed_bodies_never_get_a_5xx_or_a_hang(client: httpx.Client, route: str, payload: dict) -> None:
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(payload.get(key), int) and payload[key] > 20:
            payload[key] = 20  # the fake answers one piece per token: keep examples short
    content = payload["__raw__"] if "__raw__" in payload else json.dumps(payload)
    with client.stream("POST", route, content=content, timeout=10) as r:
        r.read()
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        error = r.json()["error"]
        assert isinstance(error, dict if route.startswith("/v1") else str)
