"""Steering a token (issue 13): a reply regenerated from a chosen alternative, and teaching it.

Also answers x-ray requests for the speaker. A steered reply is greedy from the steered token on,
so the same steer gives the same text; teaching it makes it training text (as a correction does)
and looks at the steered token's probability again TEACH_STEPS training steps later.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import torch

from brain import Brain
from brain.generate import Sampling, TokenChoice, generate, rng_kept
from school.chat_host import ChatHost
from school.commands import Steer, Teach, XRayRequest
from school.events import ChatEvent, TaughtEvent, XRayEvent
from school.tokenizer import decode, scrub


class ReplyKeeper(Protocol):
    """What steering needs of the speaker (school.speaker.Speaker): the replies it keeps, the brains
    it answers with, and its ways of describing, ending and recording a reply."""

    host: ChatHost
    prompts: dict[str, str]
    insights: OrderedDict[str, dict[str, Any]]

    def model_for(self, weights: str | int) -> tuple[Brain, str]: ...
    def describe(self, choice: TokenChoice) -> dict[str, Any]: ...
    def ends_reply(self, ids: list[int]) -> bool: ...
    def history(self, role: str, text: str, reply_id: str, weights: str) -> None: ...
    def remember(
        self, reply_id: str, ids: list[int], n_prompt: int, bias: list[float], attention: list
    ) -> None: ...


TEACH_STEPS = 10
"""A taught steer's token is looked at again this many training steps later."""


class Steering:
    """The speaker's steering: it reads the replies the speaker keeps and speaks through its host."""

    def __init__(self, speaker: ReplyKeeper) -> None:
        self.speaker = speaker
        self.taught: list[dict[str, Any]] = []
        """Taught steers waiting for their later look."""

    @property
    def host(self) -> ChatHost:
        return self.speaker.host

    def xray(self, command: XRayRequest, learning: dict[str, Any] | None = None) -> None:
        """Answer an x-ray request with an XRayEvent (its error says why when there is none)."""
        from school.xray import xray  # only an x-ray pays for importing it

        h, sp = self.host, self.speaker
        try:
            model, weights = sp.model_for(command.weights)
            shot = xray(
                model,
                h.tokenizer,
                scrub(command.text),
                max(1, min(command.top_k, 20)),
                weights=weights,
                learning=learning,
                pixel=h.pixel,
            )
        except Exception as e:  # no tokens, a missing milestone: one line back, never a crash
            h.emit(XRayEvent(h.step, command.id, error=str(e) or type(e).__name__))
            return
        h.emit(XRayEvent(h.step, command.id, shot.to_dict()))

    @torch.no_grad()
    def _chance(self, context: list[int], token_id: int) -> tuple[float, list[list[Any]]]:
        """The live brain's probability of `token_id` after `context`, and its five favourites."""
        model = self.host.model
        was_training = model.training
        model.eval()
        try:
            x = torch.tensor([context[-model.config.max_seq_len :]], device=model.device)
            probs = model(x, self.host.pixel)[0][0, -1].float().softmax(-1)
        finally:
            model.train(was_training)
        top = probs.topk(5)
        tok = self.host.tokenizer
        alts = [
            [i, p, decode(tok, [i], continuation=True)]
            for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)
        ]
        return float(probs[token_id]), alts

    def steer(self, command: Steer) -> None:
        """Token `index` of a reply becomes `token_id`; the rest is regenerated greedily (temperature 0)."""
        h, sp = self.host, self.speaker
        seen = sp.insights.get(command.reply_id)
        n_reply = len(seen["ids"]) - seen["n_prompt"] if seen is not None else 0
        if seen is None or not 0 <= command.index < n_reply:
            h.warn(f"cannot steer token {command.index} of reply {command.reply_id!r}: it is not kept")
            return
        if not 0 <= command.token_id < h.tokenizer.get_vocab_size():
            h.warn(f"cannot steer to token id {command.token_id}: not in the vocabulary")
            return
        prefix = seen["ids"][: seen["n_prompt"] + command.index]
        prob, alts = self._chance(prefix, command.token_id)
        piece = decode(h.tokenizer, [command.token_id], continuation=True)
        forced = {
            "id": command.token_id,
            "text": piece,
            "prob": prob,
            "margin": 0.0,
            "top": alts,
            "steered": True,
        }
        tokens = [dict(t) for t in seen["tokens"][: command.index]] + [forced]
        attention = list(seen["attention"][: command.index + 1])
        ids = [*prefix, command.token_id]
        rest = 120 - command.index - 1
        with rng_kept(h.model):
            if rest > 0 and not sp.ends_reply(ids[seen["n_prompt"] :]):
                sampling = Sampling(temperature=0.0, max_tokens=rest)
                for choice in generate(h.model, ids, sampling, h.pixel, sp.ends_reply, insight=True):
                    ids.append(choice.id)
                    tokens.append(sp.describe(choice))
                    attention.append(choice.attention)
        text = decode(h.tokenizer, ids[seen["n_prompt"] :], continuation=True).strip("\n")
        prompt = sp.prompts.get(command.reply_id, "")
        sp.prompts[command.id] = prompt
        steered = {"prefix": prefix, "token_id": command.token_id, "piece": piece, "before": prob}
        sp.remember(command.id, ids, seen["n_prompt"], seen["bias"], attention, tokens, steered=steered)
        sp.history("baby", text, command.id, h.weights)
        h.emit(
            ChatEvent(h.step, command.id, text, final=True, prompt=prompt, weights=h.weights, tokens=tokens)
        )

    def teach(self, command: Teach) -> None:
        """A steered reply becomes training text; its steered token is looked at now and TEACH_STEPS later."""
        h, sp = self.host, self.speaker
        seen = sp.insights.get(command.id)
        steered = seen.get("steered") if seen is not None else None
        if steered is None:
            h.warn(f"reply {command.id!r} was not steered here: nothing to teach")
            return
        text = decode(h.tokenizer, seen["ids"][seen["n_prompt"] :], continuation=True).strip("\n")
        prompt = sp.prompts.get(command.id, "")
        h.learn(f"{prompt}\n{text}" if prompt else text, "steer")
        before, _ = self._chance(steered["prefix"], steered["token_id"])
        self.taught.append({**steered, "reply_id": command.id, "before": before, "due": h.step + TEACH_STEPS})
        h.emit(TaughtEvent(h.step, command.id, steered["token_id"], steered["piece"], before))

    def after_step(self) -> None:
        """Called by a training host after each step: a taught token whose steps are done is looked at."""
        if not self.taught:
            return
        h = self.host
        for item in [t for t in self.taught if h.step >= t["due"]]:
            self.taught.remove(item)
            after, _ = self._chance(item["prefix"], item["token_id"])
            h.emit(
                TaughtEvent(
                    h.step,
                    item["reply_id"],
                    item["token_id"],
                    item["piece"],
                    item["before"],
                    after,
                    TEACH_STEPS,
                )
            )
