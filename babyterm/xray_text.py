"""An x-ray (school.xray's JSON) as lines of text, per stage and per chosen token, layer and head.

Both `babyterm xray` and the app's x-ray screen draw from here, so they always say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from babyterm.text import clean
from school.events import TaughtEvent

BAR = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Focus:
    """Where the reader is looking: a token (position), a layer and a head."""

    token: int
    layer: int = 0
    head: int = 0


def piece(text: str) -> str:
    """A piece as a short visible label: spaces and newlines shown, control characters gone."""
    return repr(clean(text).replace("\n", "⏎"))[1:-1] or "∅"


def quoted(text: str) -> str:
    """A piece in quotes, so a leading space (or a lone one) shows."""
    return f'"{piece(text)}"'


def bar(values: list[float | None], top: float | None = None) -> str:
    """A strip of block characters, one per value, scaled to `top` (default: the largest); a value
    that is not a number (None: nan or inf, from wild weights) is a "?"."""
    known = [abs(v) for v in values if v is not None and math.isfinite(v)]
    top = top if top is not None else max(known, default=0.0)
    if not top > 0 or not math.isfinite(top):
        return "".join("?" if v is None or not math.isfinite(v) else BAR[0] for v in values)
    return "".join(
        "?" if v is None or not math.isfinite(v) else BAR[min(8, round(8 * abs(v) / top))] for v in values
    )


def _tokens(shot: dict[str, Any], f: Focus) -> list[str]:
    out = []
    for t in shot["tokens"]:
        mark = "▶" if t["index"] == f.token else " "
        raw = " ".join(f"{b:02x}" for b in t["bytes"]) or "-"
        fallback = "  byte fallback" if t["byte_fallback"] else ""
        out.append(f"{mark}{t['index']:>4}  id {t['id']:>5}  {quoted(t['piece']):<14} bytes {raw}{fallback}")
    return out


def _embeddings(shot: dict[str, Any], f: Focus) -> list[str]:
    e = shot["embeddings"][f.token]
    near = ", ".join(f"{quoted(n['piece'])} {n['cosine']:.2f}" for n in e["nearest"])
    return [
        f"token {f.token} {quoted(shot['tokens'][f.token]['piece'])}: norm {e['norm']:.3f}",
        f"row   {bar(e['values'][:96])}",
        f"nearest by cosine: {near}",
    ]


def _position(shot: dict[str, Any], f: Focus) -> list[str]:
    p = shot["position"]
    if p["kind"] == "rotary":
        angles = p["angles"][f.token]
        out = [f"position {f.token}: pair j turns by {f.token} × base^(-2j/d) radians"]
        out.append("angles " + " ".join(f"{a:.2f}" for a in angles[:8]) + (" …" if len(angles) > 8 else ""))
        h = shot["layers"][f.layer]["heads"][f.head]
        if h.get("query"):
            out.append(f"query before rotation (layer {f.layer} head {f.head}) {bar(h['query'][f.token])}")
            out.append(f"query after rotation                   {bar(h['query_rotated'][f.token])}")
        return out
    out = [
        f"position {f.token}: learned row, norm {p['norms'][f.token]:.3f}",
        f"row {bar(p['rows'][f.token][:96])}",
    ]
    if p.get("weight") is not None:
        out.append(f"share of the position in the input blend: {p['weight']:.2f}")
    return out


def _attention(shot: dict[str, Any], f: Focus) -> list[str]:
    h = shot["layers"][f.layer]["heads"][f.head]
    pieces = [quoted(t["piece"]) for t in shot["tokens"]]
    w, s = h["weights"][f.token], h["scores"][f.token]
    out = [
        f"layer {f.layer} head {f.head}, query token {f.token} {pieces[f.token]}: "
        f"value mix norm {h['value_norm'][f.token]:.3f}"
    ]
    out.append(f"weights over keys 0..{f.token} {bar(w[: f.token + 1])}  (later keys masked: −∞)")
    best = sorted(range(f.token + 1), key=lambda k: -w[k])[:5]
    out += [f"  key {k:>4} {pieces[k]:<12} score {s[k]:+.3f}  weight {w[k]:.3f}" for k in best]
    return out


def _mlp_view(view: dict[str, Any], f: Focus, what: str) -> list[str]:
    out = [
        f"{what} at token {f.token}: mean |a| {view['mean_abs'][f.token]:.3f}, "
        f"{view['active'][f.token]:.0%} of neurons on, strongest {view['top'][f.token]}"
    ]
    if view.get("saturated"):
        out.append(f"stuck near ±1: {view['saturated'][f.token]:.0%}")
    return out


def _mlp(shot: dict[str, Any], f: Focus) -> list[str]:
    return _mlp_view(shot["layers"][f.layer]["mlp"], f, f"layer {f.layer} feed-forward")


def _residual(shot: dict[str, Any], f: Focus) -> list[str]:
    return [
        f"after block {layer['index']}: norm {layer['residual_norm'][f.token]:.3f}   "
        f"{bar(layer['residual_norm'])}"
        for layer in shot["layers"]
    ]


def _window(shot: dict[str, Any], f: Focus) -> list[str]:
    w = shot["window"]
    reads = w["reads"][f.token]
    pieces = [quoted(shot["tokens"][i]["piece"]) for i in reads]
    return [
        f"token {f.token} reads {len(reads)} of {w['size']} slots: {' '.join(pieces)}",
        f"push per slot (oldest first) {' '.join(f'{v:.2f}' for v in w['slot_norm'][f.token])}",
    ]


def _hidden(shot: dict[str, Any], f: Focus) -> list[str]:
    return _mlp_view(shot["hidden"], f, "tanh layer")


def _neurons(shot: dict[str, Any], f: Focus) -> list[str]:
    b = shot["babyllm"]
    blend = " ".join(f"{n} {v:.2f}" for n, v in zip(("token", "position", "pixel"), b["blend"], strict=True))
    return [f"input blend: {blend}", *_mlp_view(b["neurons"], f, "neurons")]


def _windows(shot: dict[str, Any], f: Focus) -> list[str]:
    b = shot["babyllm"]
    return [
        f"window {size:5.1f} tokens  mix {mix:.2f}  mean norm {norms[f.token]:.3f}  {bar(norms)}"
        for size, mix, norms in zip(b["window_sizes"], b["window_mix"], b["window_norm"], strict=True)
    ]


def _memory(shot: dict[str, Any], f: Focus) -> list[str]:
    b = shot["babyllm"]
    out = []
    for n, (decays, gates, norms) in enumerate(zip(b["decays"], b["gates"], b["memory_norm"], strict=True)):
        out.append(
            f"memory {n}: decays short {decays[0]:.2f} long {decays[1]:.2f}; at token {f.token} "
            f"gate {gates[f.token]:.2f} (1 = memory), output norm {norms[f.token]:.3f}"
        )
        out.append(f"  gates {bar(gates, 1.0)}")
    return out


def _logits(shot: dict[str, Any], f: Focus) -> list[str]:
    view = shot["logits"][f.token]
    guesses = "  ".join(f"{quoted(g['piece'])} {g['prob']:.2f}" for g in view["top"])
    out = [f"after token {f.token}, next: {guesses}"]
    if view["true_id"] is not None:
        truth = quoted(shot["tokens"][f.token + 1]["piece"])
        out.append(
            f"truth {truth}: chance {view['true_prob']:.3f}, surprise {view['surprise_bits']:.2f} bits"
        )
    else:
        out.append("the text ends here: nothing to compare with")
    return out


def _learning(shot: dict[str, Any], f: Focus) -> list[str]:
    rec = shot["learning"]
    if rec["step"] is None:
        return ["nothing recorded yet: update sizes are measured on logged training steps"]
    out = [f"update sizes ‖Δw‖/‖w‖ of step {rec['step']}:"]
    out += [f"  {name:<16} {v:.2e}" for name, v in rec["updates"].items()]
    return out


STAGE_LINES = {
    "tokens": _tokens,
    "embeddings": _embeddings,
    "position": _position,
    "attention": _attention,
    "mlp": _mlp,
    "residual": _residual,
    "window": _window,
    "hidden": _hidden,
    "neurons": _neurons,
    "windows": _windows,
    "memory": _memory,
    "logits": _logits,
    "learning": _learning,
}


def stage_lines(shot: dict[str, Any], stage: str, focus: Focus) -> list[str]:
    """The lines one stage shows for `focus` (the sentence is the caller's to place)."""
    return STAGE_LINES[stage](shot, focus)


def sentence(shot: dict[str, Any], stage: str) -> str:
    return next(s["sentence"] for s in shot["stages"] if s["name"] == stage)


def report(shot: dict[str, Any]) -> list[str]:
    """The whole x-ray for a terminal: every stage at the last token, every layer and head."""
    last = len(shot["tokens"]) - 1
    n = len(shot["tokens"])
    out = [f"x-ray: {shot['brain']} brain, {shot['weights']}, {n} token{'s' if n != 1 else ''}"]
    for s in shot["stages"]:
        out += ["", f"── {s['name']} ── {s['sentence']}"]
        if s["name"] in ("attention", "mlp"):
            for layer in shot["layers"]:
                heads = range(len(layer["heads"])) if s["name"] == "attention" else [0]
                for h in heads:
                    out += stage_lines(shot, s["name"], Focus(last, layer["index"], h))
        elif s["name"] == "logits":
            for t in range(len(shot["tokens"])):
                out += stage_lines(shot, "logits", Focus(t))
        else:
            out += stage_lines(shot, s["name"], Focus(last))
    return out


def taught_line(event: TaughtEvent) -> str:
    """A taught steer's token: its chance when taught, and after the training steps that followed."""
    what = f"taught {quoted(event.piece)}: chance {event.before:.3f} when taught"
    if event.after is None:
        return f"{what}, watching the next training steps…"
    return f"{what}, {event.after:.3f} after {event.steps} training steps"
