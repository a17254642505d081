"""The Ollama face, the part oterm uses: /api/tags, /api/show, /api/generate, /api/chat, /api/version.

Streaming is newline-delimited JSON, the default as in Ollama; the last record has `done: true` with
the eval counts and durations (nanoseconds). Sampling comes from `options` (temperature, top_p,
top_k, num_predict, seed, repeat_penalty, stop); other options are ignored.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from school.framing import STOP

from .bridge import MAX_TOKENS, Ask, Bridge, HostGone
from .errors import ApiError, boolean, mapping, number, read_json, stops, string
from .openai_api import SEED_MAX, chat_text
from .queue import QueueFull

VERSION = "0.6.0"
"""The Ollama API version this face answers as (clients check it)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _model(body: Mapping[str, Any], bridge: Bridge) -> str:
    model = string(body, "model", body.get("name") if isinstance(body.get("name"), str) else None)
    if model not in (bridge.name, f"{bridge.name}:latest"):
        raise ApiError(404, f"model {model!r} not found: this server speaks as {bridge.name!r}")
    return model


def sampling(body: Mapping[str, Any], text: str) -> Ask:
    o = mapping(body, "options")
    where = "options."
    num_predict = number(o, "num_predict", Ask.max_tokens, -2, 2**31, integer=True, where=where)
    seed = number(o, "seed", None, -SEED_MAX - 1, SEED_MAX, integer=True, where=where)
    top_p = number(o, "top_p", None, 0, 1, where=where)
    temperature = number(o, "temperature", Ask.temperature, 0, 100, where=where)
    # CTRL's penalty divides the seen tokens' logits by it: 0 is no penalty at all but a division by 0
    penalty = number(o, "repeat_penalty", Ask.repetition_penalty, 0, 100, where=where, lo_open=True)
    if top_p == 0:
        temperature, top_p = 0.0, None
    return Ask(
        text,
        # -1 (for ever) and -2 (fill the context) both mean as much as the cap allows
        max_tokens=MAX_TOKENS if num_predict < 0 else max(1, min(num_predict, MAX_TOKENS)),
        temperature=float(temperature),
        top_p=top_p,
        top_k=number(o, "top_k", Ask.top_k, 0, 2**31, integer=True, where=where),
        repetition_penalty=float(penalty),
        seed=None if seed is None or seed < 0 else seed,
        stops=stops(o, "stop", where=where),
    )


def _details(bridge: Bridge) -> dict[str, Any]:
    params = bridge.params()
    return {
        "parent_model": "",
        "format": "safetensors",
        "family": "babyterm",
        "families": ["babyterm"],
        "parameter_size": f"{params / 1e6:.2f}M",
        "quantization_level": "F32",
    }


async def version(request: Request, bridge: Bridge) -> Response:
    return JSONResponse({"version": VERSION})


async def tags(request: Request, bridge: Bridge) -> Response:
    name = f"{bridge.name}:latest"
    entry = {
        "name": name,
        "model": name,
        "modified_at": _now(),
        "size": bridge.params() * 4,
        "digest": hashlib.sha256(bridge.name.encode()).hexdigest(),
        "details": _details(bridge),
    }
    return JSONResponse({"models": [entry]})


async def show(request: Request, bridge: Bridge) -> Response:
    from school.exports.gguf import TEMPLATE  # the Modelfile's template is the framing's

    body = await read_json(request)
    _model(body, bridge)
    ask = Ask("")
    parameters = "\n".join(
        [f"temperature {ask.temperature}", f"top_k {ask.top_k}", *(f"stop {json.dumps(s)}" for s in STOP)]
    )
    return JSONResponse(
        {
            "modelfile": f'FROM {bridge.name}\nTEMPLATE """{TEMPLATE}"""\n'
            + "".join(f"PARAMETER {p}\n" for p in parameters.splitlines()),
            "parameters": parameters,
            "template": TEMPLATE,
            "details": _details(bridge),
            "model_info": {"general.architecture": "babyterm", "general.parameter_count": bridge.params()},
            "capabilities": ["completion"],
            "modified_at": _now(),
        }
    )


async def generate(request: Request, bridge: Bridge) -> Response:
    body = await read_json(request)
    model = _model(body, bridge)
    prompt = string(body, "prompt", "")
    system = string(body, "system", "")
    text = f"{system}\n\n{prompt}" if system else prompt
    ask = sampling(body, text)
    stream = boolean(body, "stream", True)
    if not prompt.strip():  # Ollama's way to load a model: an empty prompt answers done at once
        return _done_only(model, stream, {"response": "", "done_reason": "load"})
    return await _answer(bridge, ask, model, stream, lambda t: {"response": t})


async def chat(request: Request, bridge: Bridge) -> Response:
    body = await read_json(request)
    model = _model(body, bridge)
    stream = boolean(body, "stream", True)
    if body.get("messages") in (None, []):
        return _done_only(
            model, stream, {"message": {"role": "assistant", "content": ""}, "done_reason": "load"}
        )
    ask = sampling(body, chat_text(body.get("messages")))
    return await _answer(
        bridge, ask, model, stream, lambda t: {"message": {"role": "assistant", "content": t}}
    )


def _done_only(model: str, stream: bool, fields: dict[str, Any]) -> Response:
    record = {"model": model, "created_at": _now(), **fields, "done": True}
    if stream:
        return StreamingResponse(iter([json.dumps(record) + "\n"]), media_type="application/x-ndjson")
    return JSONResponse(record)


async def _answer(bridge: Bridge, ask: Ask, model: str, stream: bool, content: Any) -> Response:
    started = time.perf_counter_ns()

    def final(reply: Any, text: str) -> dict[str, Any]:
        total = time.perf_counter_ns() - started
        return {
            "model": model,
            "created_at": _now(),
            **content(text),
            "done": True,
            "done_reason": reply.finish_reason,
            "total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": bridge.count(ask.text),
            "prompt_eval_duration": 0,
            "eval_count": reply.tokens,
            "eval_duration": total,
        }

    if not stream:
        try:
            async with bridge.reply(ask) as reply:
                async for _ in reply.pieces():
                    pass
        except QueueFull as e:
            raise ApiError(429, str(e)) from None
        except HostGone as e:
            raise ApiError(503, str(e)) from None
        return JSONResponse(final(reply, reply.text))

    async def lines() -> AsyncIterator[str]:
        try:
            async with bridge.reply(ask) as reply:
                async for piece in reply.pieces():
                    record = {"model": model, "created_at": _now(), **content(piece), "done": False}
                    yield json.dumps(record, ensure_ascii=False) + "\n"
                yield json.dumps(final(reply, ""), ensure_ascii=False) + "\n"
        except (QueueFull, HostGone) as e:
            yield json.dumps({"error": str(e)}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
