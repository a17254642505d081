"""Running the server: checks on where it listens, a uvicorn in its own thread, and the banner.

The server always runs beside its host (the tutor or the observer) in one process, in a thread
with its own asyncio loop, so the host keeps the main thread (and its signals) to itself.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
import time

import uvicorn

from soul.paths import SoulError

from .app import build_app
from .bridge import Bridge, Host

KEY_ENV = "BABYTERM_API_KEY"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


class ServeError(SoulError):
    """The server cannot start: one line for the user (exit 2, as every user error)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(given: str | None) -> str | None:
    """The key from --api-key, else from $BABYTERM_API_KEY (an argument shows in `ps`)."""
    return given or os.environ.get(KEY_ENV) or None


def check_host(host: str, key: str | None) -> None:
    if not is_loopback(host) and not key:
        raise ServeError(
            f"refusing to listen on {host} without an API key: give --api-key or set {KEY_ENV} "
            "(or stay on 127.0.0.1)"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line ServeError (a busy port, an unknown address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}: {e.strerror or e}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        hint = {
            errno.EADDRINUSE: " (is something else using it?)",
            errno.EADDRNOTAVAIL: " (this machine has no such address: try 127.0.0.1 or 0.0.0.0)",
            errno.EACCES: " (ports below 1024 need privileges: try 8000 or above)",
        }.get(e.errno or 0, "")
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    sock.set_inheritable(True)
    return sock


class ServerThread:
    """An HTTP server for `host`'s chat, in a daemon thread; `start()`, then `stop()`."""

    def __init__(
        self,
        host: Host,
        name: str,
        address: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        key: str | None = None,
        weights: str | int = "live",
        duty: float = 1.0,
    ) -> None:
        check_host(address, key)
        self.bridge = Bridge(host, name, weights=weights, duty=duty)
        self.socket = bind(address, port)
        self.address, self.port = address, self.socket.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.bridge, key),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="babyterm-serve", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < end:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise ServeError(f"the server on {self.url} did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(5)
        with contextlib.suppress(OSError):
            self.socket.close()


def banner(url: str, name: str, keyed: bool) -> str:
    """What `serve` prints at start: the base URL and how to point clients at it."""
    key = "$BABYTERM_API_KEY" if keyed else "unused"
    return "\n".join(
        [
            f"serving {name} on {url}  (OpenAI: {url}/v1   Ollama: {url})",
            f'  openai:  OpenAI(base_url="{url}/v1", api_key="{key}")'
            f'.chat.completions.create(model="{name}", ...)',
            f'  ollama:  ollama.Client(host="{url}").chat(model="{name}", messages=[...])',
            f"  oterm:   OLLAMA_HOST={url} oterm",
            f"  curl:    curl {url}/v1/chat/completions -H 'Content-Type: application/json' "
            f"""-d '{{"model": "{name}", "messages": [{{"role": "user", "content": "Hello"}}]}}'""",
        ]
    )
