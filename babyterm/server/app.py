"""The server's routes: each face's endpoints behind one guard (the key, refusals as that face's body)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import ollama_api, openai_api
from .bridge import Bridge
from .errors import ApiError

Endpoint = Callable[[Request, Bridge], Awaitable[Response]]


def _guard(endpoint: Endpoint, bridge: Bridge, api_key: str | None, openai: bool) -> Callable:
    async def guarded(request: Request) -> Response:
        try:
            if api_key is not None:
                given = request.headers.get("authorization", "")
                scheme, _, token = given.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    token.strip().encode(), api_key.encode()
                ):
                    raise ApiError(
                        401, "a valid API key is needed: Authorization: Bearer KEY", code="invalid_api_key"
                    )
            return await endpoint(request, bridge)
        except ApiError as e:
            return JSONResponse(e.openai_body() if openai else e.ollama_body(), status_code=e.status)

    return guarded


def build_app(bridge: Bridge, api_key: str | None = None) -> Starlette:
    """The ASGI app for `bridge`; with `api_key`, every route wants it as a bearer token."""
    routes = [
        ("/v1/models", openai_api.models, "GET", True),
        ("/v1/chat/completions", openai_api.chat_completions, "POST", True),
        ("/v1/completions", openai_api.completions, "POST", True),
        ("/api/version", ollama_api.version, "GET", False),
        ("/api/tags", ollama_api.tags, "GET", False),
        ("/api/show", ollama_api.show, "POST", False),
        ("/api/generate", ollama_api.generate, "POST", False),
        ("/api/chat", ollama_api.chat, "POST", False),
    ]
    return Starlette(
        routes=[
            Route(path, _guard(fn, bridge, api_key or None, openai), methods=[method])
            for path, fn, method, openai in routes
        ]
    )
