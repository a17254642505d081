"""The baby in other tools' formats (hf, llama2c, gguf, safetensors), and other models adopted as babies.

    export(source, "hf" | "llama2c" | "gguf" | "safetensors", out_dir)   hf.py, llama2c.py, gguf.py,
                                                                        safetensors_export.py
    adopt(path, baby, home)                                     adopt.py

Layering: these modules read and write whole babies, so they use the school's tokenizer and revive
on top of the soul's files (and are imported only on demand, by the CLI).
"""

from __future__ import annotations

from pathlib import Path

from school.exports.source import Source, into_fresh_folder, revived
from soul.paths import SoulError

FORMATS = ("hf", "llama2c", "gguf", "safetensors")


def export(source: Source, fmt: str, out_dir: Path, quant: str = "f32") -> list[Path]:
    """Write the baby in `fmt` into `out_dir` (absent or empty); returns the files written.

    Raises SoulError (one line) for an unknown format, a brain the format cannot hold (only the
    transformer exports to hf, llama2c and gguf), a missing baby or a non-empty `out_dir`.
    `quant` (f32 or q8_0) is for gguf only.
    """
    if fmt not in FORMATS:
        raise SoulError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if quant != "f32" and fmt != "gguf":
        raise SoulError(f"--quant is for --format gguf; {fmt} exports float32")
    if fmt == "gguf":
        from school.exports.gguf import export_gguf

        return export_gguf(source, out_dir, quant)
    if fmt == "hf":
        from school.exports.hf import export_hf as run
    elif fmt == "llama2c":
        from school.exports.llama2c import export_llama2c as run
    else:
        from school.exports.safetensors_export import export_safetensors as run
    return run(source, out_dir)


__all__ = ["FORMATS", "Source", "export", "into_fresh_folder", "revived"]
