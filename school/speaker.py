"""The baby's voice: chat replies from the live weights between training steps, and corrections.

A reply is generated in one burst (a tiny model says 100 tokens in well under a second), so every
token comes from the same weights; Escape (chat_cancel) and stop are honoured between tokens.
"""

from __future__ import annotations

import queue
import time
from typing import TYPE_CHECKING, Any

import torch

from brain.generate import Sampling, generate
from soul.jsonl import append_jsonl

if TYPE_CHECKING:
    from school.tutor import Tutor

MAX_PROMPT_CHARS = 4000  # the window is a few hundred tokens; more text only costs encoding time


class Speaker:
    def __init__(self, tutor: Tutor) -> None:
        self.tutor = tutor
        self.prompts: dict[str, str] = {}  # reply id -> what it answered, for corrections

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

    def reply(self, cmd: dict[str, Any]) -> None:
        t = self.tutor
        reply_id = str(cmd.get("id", ""))
        text = str(cmd.get("text", ""))[:MAX_PROMPT_CHARS]
        self.prompts[reply_id] = text
        self._history("you", text, reply_id)
        sampling = Sampling(
            temperature=float(cmd.get("temperature", 0.8)),
            top_k=cmd.get("top_k", 40),
            top_p=cmd.get("top_p"),
            repetition_penalty=float(cmd.get("repetition_penalty", 1.0)),
            max_tokens=max(1, min(int(cmd.get("max_tokens", 120)), 2000)),
            seed=cmd.get("seed"),
        )
        prompt = t.librarian.encode(text + "\n") if text.strip() else []
        ids: list[int] = []
        shown = ""
        tokens: list[dict[str, Any]] = []
        rng_state = torch.get_rng_state()  # chatting must not change what training draws next
        for choice in generate(t.model, prompt, sampling, t.pixel, stop=lambda got: self._ends_reply(got)):
            ids.append(choice.id)
            piece = t.librarian.decode([choice.id], continuation=True)
            tokens.append(
                {
                    "id": choice.id,
                    "text": piece,
                    "prob": choice.prob,
                    "margin": choice.margin,
                    "top": [list(pair) for pair in choice.top],
                }
            )
            whole = t.librarian.decode(ids)
            if whole.startswith(shown) and len(whole) > len(shown):
                t.emit_chat(reply_id, whole[len(shown) :])
                shown = whole
            if self._cancelled(reply_id):
                break
        torch.set_rng_state(rng_state)
        final = t.librarian.decode(ids).strip("\n")
        t.emit_chat(reply_id, final, final=True, prompt=text, weights="live", tokens=tokens)
        self._history("baby", final, reply_id)

    def _ends_reply(self, ids: list[int]) -> bool:
        """A blank line or an end-of-text token closes a reply."""
        return ids[-1] == 2 or (len(ids) > 2 and self.tutor.librarian.decode(ids[-3:]).endswith("\n\n"))

    def correct(self, cmd: dict[str, Any]) -> None:
        """The user's better answer becomes training text (babyLLM's infer2 did this)."""
        t = self.tutor
        reply_id = str(cmd.get("id", ""))
        correction = str(cmd.get("text", "")).strip()
        if not correction:
            return
        prompt = self.prompts.get(reply_id, "")
        t.librarian.add_text(f"{prompt}\n{correction}" if prompt else correction, "correction")
        self._history("correction", correction, reply_id)
        t.emit_chat(reply_id, correction, final=True, prompt=prompt, role="correction")
