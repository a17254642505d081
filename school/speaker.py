"""The baby's voice: chat replies between training steps, with what it thought of each token.

A reply is generated in one burst (a tiny model says 100 tokens in well under a second), so every
token comes from the same weights; Escape (chat_cancel) and stop are honoured between tokens. A
reply can come from the live weights or from a milestone (an earlier self), and records which.
"""

from __future__ import annotations

import math
import queue
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from brain import Brain, build_brain, config_from_dict
from brain.babyllm import window_reach
from brain.generate import Sampling, TokenChoice, generate
from school.emphasis import emphasis_bias, parse_marks
from school.events import InsightEvent
from school.options import MAX_PROMPT_CHARS
from school.tokenizer import scrub
from soul import checkpoint as ckpt
from soul.jsonl import append_jsonl
from soul.milestones import load_milestone

if TYPE_CHECKING:
    from school.tutor import Tutor

KEEP_INSIGHTS = 16  # replies whose per-token attention is kept for `attend`


def sampling_from(cmd: dict[str, Any]) -> Sampling:
    """The sampling settings a chat command asks for (bad values fall back to the defaults)."""
    base = Sampling()

    def num(key: str, cast: type, default: Any) -> Any:
        try:
            return cast(cmd[key]) if cmd.get(key) is not None else default
        except (TypeError, ValueError):
            return default

    return Sampling(
        temperature=max(0.0, num("temperature", float, base.temperature)),
        top_k=num("top_k", int, base.top_k) or None,
        top_p=num("top_p", float, None),
        repetition_penalty=max(1e-3, num("repetition_penalty", float, 1.0)),
        max_tokens=max(1, min(num("max_tokens", int, base.max_tokens), 2000)),
        seed=num("seed", int, None),
    )


class Speaker:
    def __init__(self, tutor: Tutor) -> None:
        self.tutor = tutor
        self.prompts: dict[str, str] = {}  # reply id -> what it answered, for corrections
        self.insights: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._milestone: tuple[int, Brain] | None = None

    def greedy(self, prompt: list[int], n: int) -> list[int]:
        sampling = Sampling(temperature=0.0, max_tokens=n)
        return [c.id for c in generate(self.tutor.model, prompt, sampling, self.tutor.pixel)]

    def _history(self, role: str, text: str, reply_id: str, weights: str = "live") -> None:
        record = {"time": time.time(), "role": role, "text": text, "step": self.tutor.step}
        append_jsonl(self.tutor.paths.chat, {**record, "weights": weights, "reply_id": reply_id})

    def _cancelled(self, reply_id: str) -> bool:
        """Look at commands that arrived mid-reply: a cancel for this reply or a stop ends it."""
        t = self.tutor
        while True:
            try:
                cmd = t.commands.get_nowait()
            except queue.Empty:
                return False
            if cmd.get("cmd") == "chat_cancel" and cmd.get("id") == reply_id:
                return True
            t._deferred.append(cmd)
            if cmd.get("cmd") == "stop":
                return True

    def model_for(self, weights: Any) -> tuple[Brain, str]:
        """The live brain, or a milestone's (loaded once and kept while it is asked for)."""
        if weights in (None, "live", ""):
            return self.tutor.model, f"live (step {self.tutor.step})"
        step = int(str(weights).removeprefix("step-"))
        if self._milestone is None or self._milestone[0] != step:
            tensors = load_milestone(self.tutor.paths.milestones, step, str(self.tutor.room.device))
            model = build_brain(config_from_dict(self.tutor.room.record.brain)).to(self.tutor.room.device)
            ckpt.load_model_tensors(model, tensors)
            self._milestone = (step, model.eval())
        return self._milestone[1], f"milestone step {step}"

    def reply(self, cmd: dict[str, Any]) -> None:
        t = self.tutor
        reply_id = str(cmd.get("id", ""))
        raw = scrub(str(cmd.get("text", "")))[-MAX_PROMPT_CHARS:]
        self.prompts[reply_id] = raw
        try:
            model, weights = self.model_for(cmd.get("weights"))
        except Exception as e:  # a missing or damaged milestone is a message, not a crash
            t.emit_chat(reply_id, f"(cannot answer with those weights: {e})", final=True, prompt=raw)
            return
        self._history("you", raw, reply_id, weights)
        text, spans = parse_marks(raw)
        strength = float(cmd.get("emphasis") or 2.0)
        ids, bias = (
            emphasis_bias(t.librarian.tokenizer, text + "\n", spans, strength) if text.strip() else ([], [])
        )
        kept_ids, pieces, tokens, attention = list(ids), [], [], []
        shown = ""
        rng_state = torch.get_rng_state()  # chatting must not change what training draws next
        choices = generate(model, ids, sampling_from(cmd), t.pixel, self._ends_reply, bias, insight=True)
        for choice in choices:
            pieces.append(choice.id)
            tokens.append(self._describe(choice))
            attention.append(choice.attention)
            whole = t.librarian.decode(pieces)
            if whole.startswith(shown) and len(whole) > len(shown):
                t.emit_chat(reply_id, whole[len(shown) :], weights=weights)
                shown = whole
            if self._cancelled(reply_id):
                break
        torch.set_rng_state(rng_state)
        final = t.librarian.decode(pieces).strip("\n")
        self._remember(reply_id, kept_ids + pieces, len(kept_ids), bias, attention)
        t.emit_chat(reply_id, final, final=True, prompt=raw, weights=weights, tokens=tokens)
        self._history("baby", final, reply_id, weights)

    def _describe(self, choice: TokenChoice) -> dict[str, Any]:
        piece = self.tutor.librarian.decode([choice.id], continuation=True)
        top = [[i, p, self.tutor.librarian.decode([i], continuation=True)] for i, p in choice.top]
        return {"id": choice.id, "text": piece, "prob": choice.prob, "margin": choice.margin, "top": top}

    def _ends_reply(self, ids: list[int]) -> bool:
        """A blank line or an end-of-text token closes a reply."""
        return ids[-1] == 2 or (len(ids) > 2 and self.tutor.librarian.decode(ids[-3:]).endswith("\n\n"))

    def _remember(
        self, reply_id: str, ids: list[int], n_prompt: int, bias: list[float], attention: list
    ) -> None:
        self.insights[reply_id] = {"ids": ids, "n_prompt": n_prompt, "bias": bias, "attention": attention}
        while len(self.insights) > KEEP_INSIGHTS:
            self.insights.popitem(last=False)

    def attend(self, cmd: dict[str, Any]) -> None:
        """What reply token `index` looked at, as it was when it was chosen."""
        t = self.tutor
        reply_id, index = str(cmd.get("id", "")), int(cmd.get("index", 0))
        seen = self.insights.get(reply_id)
        if seen is None or not 0 <= index < len(seen["attention"]):
            t._warn(f"no insight kept for token {index} of reply {reply_id!r}")
            return
        att = seen["attention"][index]
        # the token at reply index i was chosen after reading prompt + reply[:i]
        context_ids = seen["ids"][: seen["n_prompt"] + index]
        window = t.model.config.max_seq_len
        context_ids = context_ids[-window:]
        context = [t.librarian.decode([i], continuation=True) for i in context_ids]
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

    def correct(self, cmd: dict[str, Any]) -> None:
        """The user's better answer becomes training text (babyLLM's infer2 did this)."""
        t = self.tutor
        reply_id = str(cmd.get("id", ""))
        correction = scrub(str(cmd.get("text", ""))).strip()
        if not correction:
            return
        prompt = self.prompts.get(reply_id, "")
        t.librarian.add_text(f"{prompt}\n{correction}" if prompt else correction, "correction")
        self._history("correction", correction, reply_id)
        t.emit_chat(reply_id, correction, final=True, prompt=prompt, role="correction")
