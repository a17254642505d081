"""Refusals the server answers with, and the checks on request bodies that raise them.

A bad request is one ApiError: status, one line, and the field it is about. The OpenAI routes render
it as {"error": {"message", "type", "param", "code"}}, the Ollama routes as {"error": "..."}.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

MAX_BODY = 1_000_000
"""Bytes a request body may have (1 MB); more is 413."""


class ApiError(Exception):
    """A request the server refuses."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    @property
    def type(self) -> str:
        return {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error"}.get(
            self.status, "invalid_request_error" if self.status < 500 else "server_error"
        )

    def openai_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def ollama_body(self) -> dict[str, Any]:
        return {"error": self.message}


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 413 past MAX_BODY (read no further), 400 when it is not one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"request body over {MAX_BODY:,} bytes", code="body_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY:,} bytes", code="body_too_large")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object, not {type(body).__name__}", code="invalid_json")
    return body


def _present(body: Mapping[str, Any], name: str) -> bool:
    return body.get(name) is not None  # null means "not given", as the OpenAI API takes it


def number(
    body: Mapping[str, Any],
    name: str,
    default: Any,
    lo: float,
    hi: float,
    integer: bool = False,
    where: str = "",
    lo_open: bool = False,
) -> Any:
    """A number field within [lo, hi], or (lo, hi] with lo_open (bools are not numbers); `default`
    when absent or null."""
    if not _present(body, name):
        return default
    value = body[name]
    param = where + name
    kind = "an integer" if integer else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise ApiError(400, f"{param} must be {kind}, not {type(value).__name__}", param, "invalid_type")
    if not (math.isfinite(value) and (lo < value if lo_open else lo <= value) and value <= hi):
        lo_, hi_ = (f"{x:,}" if isinstance(x, int) else f"{x:g}" for x in (lo, hi))
        span = f"above {lo_} and at most {hi_}" if lo_open else f"between {lo_} and {hi_}"
        raise ApiError(400, f"{param} must be {span}, not {value}", param, "invalid_value")
    return value


def boolean(body: Mapping[str, Any], name: str, default: bool, where: str = "") -> bool:
    if not _present(body, name):
        return default
    if not isinstance(body[name], bool):
        raise ApiError(400, f"{where}{name} must be true or false", where + name, "invalid_type")
    return body[name]


def string(body: Mapping[str, Any], name: str, default: str | None = None, where: str = "") -> str:
    """A string field; without a default it is required."""
    if not _present(body, name):
        if default is None:
            raise ApiError(400, f"{where}{name} is required", where + name, "missing_field")
        return default
    if not isinstance(body[name], str):
        raise ApiError(400, f"{where}{name} must be a string", where + name, "invalid_type")
    return body[name]


def stops(body: Mapping[str, Any], name: str, where: str = "") -> tuple[str, ...]:
    """Stop strings: one string or a list of up to 4 (empty ones are dropped)."""
    if not _present(body, name):
        return ()
    value = body[name]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(s, str) for s in values):
        raise ApiError(
            400, f"{where}{name} must be a string or a list of strings", where + name, "invalid_type"
        )
    if len(values) > 4:
        raise ApiError(400, f"{where}{name} takes at most 4 strings", where + name, "invalid_value")
    return tuple(s for s in values if s)


def mapping(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if not _present(body, name):
        return {}
    if not isinstance(body[name], dict):
        raise ApiError(400, f"{name} must be an object", name, "invalid_type")
    return body[name]
