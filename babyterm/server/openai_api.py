"""The OpenAI face: /v1/models, /v1/completions and /v1/chat/completions (SSE when streamed).

A chat's messages are framed by school/framing.py (the text ends where the baby's reply begins); a
completion's prompt is the one-turn case. Fields babyterm has no use for are ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from school.framing import ROLES, frame

from .bridge import MAX_TOKENS, Ask, Bridge, HostGone
from .errors import ApiError, boolean, number, read_json, stops, string
from .queue import QueueFull

SEED_MAX = 2**63 - 1


def sampling(body: Mapping[str, Any], text: str) -> Ask:
    """The sampling fields of a request (OpenAI names; top_k as an extension)."""
    limit = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = number(body, limit, Ask.max_tokens, 1, 2**31, integer=True)
    temperature = number(body, "temperature", Ask.temperature, 0, 2)
    top_p = number(body, "top_p", None, 0, 1)
    top_k = number(body, "top_k", Ask.top_k, 0, 2**31, integer=True)
    seed = number(body, "seed", None, -SEED_MAX - 1, SEED_MAX, integer=True)
    if number(body, "n", 1, 1, 2**31, integer=True) != 1:
        raise ApiError(400, "n must be 1: the baby gives one reply at a time", "n", "invalid_value")
    if top_p == 0:  # only the likeliest token is left: that is greedy
        temperature, top_p = 0.0, None
    return Ask(
        text,
        max_tokens=min(max_tokens, MAX_TOKENS),
        temperature=float(temperature),
        top_p=top_p,
        top_k=top_k,
        seed=None if seed is None or seed < 0 else seed,
        stops=stops(body, "stop"),
    )


def _content(message: Mapping[str, Any], at: str) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text ones mean anything to the baby
        texts = []
        for i, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise ApiError(400, f"{at}.content[{i}] must be a text part", f"{at}.content", "invalid_type")
            texts.append(part["text"])
        return "".join(texts)
    raise ApiError(
        400, f"{at}.content must be a string or a list of text parts", f"{at}.content", "invalid_type"
    )


def chat_text(messages: Any, where: str = "messages") -> str:
    """The framed text of a list of {role, content} messages ("developer" counts as system)."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, f"{where} must be a non-empty list", where, "invalid_value")
    pairs = []
    for i, m in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise ApiError(400, f"{at} must be an object", where, "invalid_type")
        role = m.get("role")
        role = "system" if role == "developer" else role
        if role not in ROLES:
            raise ApiError(400, f"{at}.role must be one of {', '.join(ROLES)}", f"{at}.role", "invalid_value")
        if m.get("content") is None and role != "assistant":  # only a reply may be empty (tool calls)
            raise ApiError(400, f"{at}.content is required", f"{at}.content", "missing_field")
        pairs.append((role, _content(m, at)))
    return frame(pairs).removesuffix("\n")  # the speaker puts the newline where the reply begins


def _usage(bridge: Bridge, ask: Ask, tokens: int) -> dict[str, int]:
    prompt = bridge.count(ask.text)
    return {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def models(request: Request, bridge: Bridge) -> Response:
    return JSONResponse(
        {
            "object": "list",
            "data": [{"id": bridge.name, "object": "model", "created": 0, "owned_by": "babyterm"}],
        }
    )


async def chat_completions(request: Request, bridge: Bridge) -> Response:
    body = await read_json(request)
    model = check_model(body, bridge)
    ask = sampling(body, chat_text(body.get("messages")))
    return await _answer(bridge, ask, model, boolean(body, "stream", False), chat=True)


async def completions(request: Request, bridge: Bridge) -> Response:
    body = await read_json(request)
    model = check_model(body, bridge)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string (or a list of one string)", "prompt", "invalid_type")
    ask = sampling(body, prompt)
    return await _answer(bridge, ask, model, boolean(body, "stream", False), chat=False)


def check_model(body: Mapping[str, Any], bridge: Bridge) -> str:
    model = string(body, "model")
    if model not in (bridge.name, f"{bridge.name}:latest"):
        raise ApiError(
            404, f"no model {model!r} here: this server speaks as {bridge.name!r}", "model", "model_not_found"
        )
    return model


async def _answer(bridge: Bridge, ask: Ask, model: str, stream: bool, chat: bool) -> Response:
    rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
    created = int(time.time())
    kind = "chat.completion" if chat else "text_completion"

    def choice(text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
        if not chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        if stream:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text is not None:
                delta["content"] = text
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish,
        }

    def record(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": rid,
            "object": kind + (".chunk" if stream and chat else ""),
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }

    if not stream:
        try:
            async with bridge.reply(ask) as reply:
                async for _ in reply.pieces():
                    pass
        except QueueFull as e:
            raise ApiError(429, str(e), code="queue_full") from None
        except HostGone as e:
            raise ApiError(503, str(e), code="host_gone") from None
        return JSONResponse(
            record([choice(reply.text, reply.finish_reason)], usage=_usage(bridge, ask, reply.tokens))
        )

    async def events() -> AsyncIterator[str]:
        try:
            async with bridge.reply(ask) as reply:
                first = True
                if chat:
                    yield _sse(record([choice("", None, first=True)]))
                    first = False
                async for piece in reply.pieces():
                    yield _sse(record([choice(piece, None, first)]))
                yield _sse(
                    record(
                        [choice(None if chat else "", reply.finish_reason)],
                        usage=_usage(bridge, ask, reply.tokens),
                    )
                )
        except (QueueFull, HostGone) as e:
            code = "queue_full" if isinstance(e, QueueFull) else "host_gone"
            yield _sse(ApiError(429 if code == "queue_full" else 503, str(e), code=code).openai_body())
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
