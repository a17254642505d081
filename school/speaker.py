"""The baby's voice: chat replies with what it thought of each token.

Replies come between training steps, mid-step before the optimizer moves the weights, or between
an evaluation's batches (school/tutor.py, `_serve_chats`).

A reply is generated in one burst (a tiny model says 100 tokens in well under a second), so every
token comes from the same weights; a cancel and a stop are honoured between tokens. A reply can
come from the live weights or from a milestone (an earlier self), and records which. The speaker
works for any ChatHost: the tutor, the observer (`babyterm watch`) and `babyterm chat`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from brain import Brain
from brain.babyllm import window_reach
from brain.generate import Sampling, TokenChoice, generate, rng_kept
from school.chat_host import ChatHost
from school.commands import Attend, Chat, Correct, Steer, Teach, XRayRequest
from school.emphasis import emphasis_bias, parse_marks
from school.events import ChatEvent, InsightEvent
from school.options import MAX_PROMPT_CHARS
from school.steering import Steering
from school.text_stream import TextStream, piece_bytes
from school.tokenizer import EOS_ID, decode, scrub
from school.weights import describe
from soul.best_self import BEST
from soul.chat_log import ChatLine

KEEP_INSIGHTS = 16  # replies whose per-token attention is kept for `attend`


def sampling_from(command: Chat) -> Sampling:
    """The sampling settings a chat command asks for, kept within sane bounds."""
    return Sampling(
        temperature=max(0.0, float(command.temperature)),
        top_k=command.top_k or None,
        top_p=command.top_p,
        repetition_penalty=max(1e-3, float(command.repetition_penalty)),
        max_tokens=max(1, min(command.max_tokens, 2000)),
        seed=command.seed,
        min_p=command.min_p if command.min_p is not None and 0 < command.min_p <= 1 else None,
        dynatemp_range=max(0.0, float(command.dynatemp_range)),
        dynatemp_exponent=max(1e-3, float(command.dynatemp_exponent)),
    )


@dataclass
class Reply:
    """A finished reply."""

    text: str
    prompt: str
    weights: str
    tokens: list[dict[str, Any]] = field(default_factory=list)
    """Per token: its text, probability, margin and the alternatives it weighed."""
    refused: bool = False
    """True when it could not answer at all (missing milestone): `text` says why."""


class Speaker:
    def __init__(self, host: ChatHost) -> None:
        self.host = host
        self.prompts: dict[str, str] = {}  # reply id -> what it answered, for corrections
        self.insights: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._milestone: tuple[int | str, Brain] | None = None
        self._bytes: list[bytes] | None = None  # each id's bytes, for streaming whole characters
        self.steering = Steering(self)

    def greedy(self, prompt: list[int], n: int) -> list[int]:
        sampling = Sampling(temperature=0.0, max_tokens=n)
        return [c.id for c in generate(self.host.model, prompt, sampling, self.host.pixel)]

    def history(self, role: str, text: str, reply_id: str, weights: str) -> None:
        line = ChatLine(role, text, self.host.step, weights, reply_id, time.time())
        self.host.chat_log.write(line)

    def model_for(self, weights: str | int) -> tuple[Brain, str]:
        """The live brain, or a milestone's (loaded once and kept while it is asked for)."""
        if weights in ("live", ""):
            return self.host.model, self.host.weights
        step = weights if weights == BEST else int(str(weights).removeprefix("step-"))
        if self._milestone is None or self._milestone[0] != step or step == BEST:  # the best self moves on
            self._milestone = (step, self.host.milestone(step).eval())
        return self._milestone[1], describe(step)

    def stream(self) -> TextStream:
        """A fresh whole-character decoder for this host's tokenizer."""
        if self._bytes is None:
            self._bytes = piece_bytes(self.host.tokenizer)
        return TextStream(self.host.tokenizer, self._bytes)

    def answer(self, command: Chat, on_piece: Callable[[str, str], None] | None = None) -> Reply:
        """Answer a chat command; `on_piece(text, weights)` gets each new piece of whole characters.

        Usable without any queue (the CLI, a server); the history gets the question and the reply.
        """
        h = self.host
        raw = scrub(command.text)[-MAX_PROMPT_CHARS:]
        self.prompts[command.id] = raw
        with rng_kept(h.model):  # chatting must not change what training draws next
            try:  # a milestone's brain is built (nn.init draws) before its weights are loaded
                model, weights = self.model_for(command.weights)
            except Exception as e:  # a missing or damaged milestone is a message, not a crash
                return Reply(f"(cannot answer with those weights: {e})", raw, "live", refused=True)
            self.history("you", raw, command.id, weights)
            text, spans = parse_marks(raw)
            ids, bias = (
                emphasis_bias(h.tokenizer, text + "\n", spans, command.emphasis, bos=h.record.bos_prompt)
                if text.strip()
                else ([], [])
            )
            kept_ids, pieces, tokens, attention = list(ids), [], [], []
            stream = self.stream()
            choices = generate(
                model, ids, sampling_from(command), h.pixel, self.ends_reply, bias, insight=True
            )
            for choice in choices:
                pieces.append(choice.id)
                tokens.append(self.describe(choice))
                attention.append(choice.attention)
                if (new := stream.feed(choice.id)) and on_piece is not None:
                    on_piece(new, weights)
                if h.interrupts(command.id):
                    break
            if (rest := stream.close()) and on_piece is not None:
                on_piece(rest, weights)
        final = stream.text.strip("\n")
        self.remember(command.id, kept_ids + pieces, len(kept_ids), bias, attention, tokens)
        self.history("baby", final, command.id, weights)
        return Reply(final, raw, weights, tokens)

    def reply(self, command: Chat) -> None:
        """Answer as events: ChatEvent pieces, then a final one with the whole reply."""
        h = self.host

        def piece(text: str, weights: str) -> None:
            h.emit(ChatEvent(h.step, command.id, text, weights=weights, source=command.source))

        done = self.answer(command, piece)
        tokens = [] if done.refused else done.tokens
        h.emit(
            ChatEvent(
                h.step,
                command.id,
                done.text,
                final=True,
                prompt=done.prompt,
                weights=done.weights,
                tokens=tokens,
                source=command.source,
            )
        )

    def describe(self, choice: TokenChoice) -> dict[str, Any]:
        tok = self.host.tokenizer
        piece = decode(tok, [choice.id], continuation=True)
        top = [[i, p, decode(tok, [i], continuation=True)] for i, p in choice.top]
        return {"id": choice.id, "text": piece, "prob": choice.prob, "margin": choice.margin, "top": top}

    def ends_reply(self, ids: list[int]) -> bool:
        """A blank line or an end-of-text token closes a reply."""
        return ids[-1] == EOS_ID or (len(ids) > 2 and decode(self.host.tokenizer, ids[-3:]).endswith("\n\n"))

    def remember(
        self,
        reply_id: str,
        ids: list[int],
        n_prompt: int,
        bias: list[float],
        attention: list,
        tokens: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        self.insights[reply_id] = {
            "ids": ids,
            "n_prompt": n_prompt,
            "bias": bias,
            "attention": attention,
            "tokens": tokens or [],
            **extra,
        }
        while len(self.insights) > KEEP_INSIGHTS:
            self.insights.popitem(last=False)

    def attend(self, command: Attend) -> None:
        """What reply token `index` looked at, as it was when it was chosen."""
        t = self.host
        reply_id, index = command.id, command.index
        seen = self.insights.get(reply_id)
        if seen is None or not 0 <= index < len(seen["attention"]):
            t.warn(f"no insight kept for token {index} of reply {reply_id!r}")
            return
        att = seen["attention"][index]
        # the token at reply index i was chosen after reading prompt + reply[:i]
        context_ids = seen["ids"][: seen["n_prompt"] + index]
        window = t.model.config.max_seq_len
        context_ids = context_ids[-window:]
        context = [decode(t.tokenizer, [i], continuation=True) for i in context_ids]
        bias = (seen["bias"] + [0.0] * len(seen["ids"]))[: seen["n_prompt"] + index][-window:]
        emphasis = [math.exp(b) for b in bias]
        if isinstance(att, torch.Tensor):  # (layers, heads, S)
            att = att[..., -len(context) :]
            layers, mean = att.tolist(), att.mean(dim=(0, 1)).tolist()
            t.emit(InsightEvent(t.step, reply_id, index, context, mean, emphasis, layers=layers))
        else:  # babyllm: how much each position weighs in the windows that produced this token
            reach = window_reach(att["window_sizes"], att["window_weights"], torch.tensor(emphasis))
            windows = {
                "sizes": att["window_sizes"].tolist(),
                "mix": att["window_weights"].tolist(),
                "gates": [float(g[0, -1]) for g in att["gates"]],
                "blend": att["blend"].tolist(),
            }
            t.emit(InsightEvent(t.step, reply_id, index, context, reach.tolist(), emphasis, windows=windows))

    def correct(self, command: Correct) -> None:
        """The user's better answer becomes training text (babyLLM's infer2 did this)."""
        t = self.host
        reply_id = command.id
        correction = scrub(command.text).strip()
        if not correction:
            return
        prompt = self.prompts.get(reply_id, "")
        t.learn(f"{prompt}\n{correction}" if prompt else correction, "correction")
        self.history("correction", correction, reply_id, "live")
        t.emit(ChatEvent(t.step, reply_id, correction, final=True, prompt=prompt, role="correction"))

    # -- the x-ray and steering (school.steering does the work) ---------------------------------

    def xray(self, command: XRayRequest, learning: dict[str, Any] | None = None) -> None:
        self.steering.xray(command, learning)

    def steer(self, command: Steer) -> None:
        self.steering.steer(command)

    def teach(self, command: Teach) -> None:
        self.steering.teach(command)

    def after_step(self) -> None:
        self.steering.after_step()
