"""The baby in other tools' formats (hf, llama2c, safetensors), and other models adopted as babies.

    export(source, "hf" | "llama2c" | "safetensors", out_dir)   hf.py, llama2c.py, safetensors_export.py
    adopt(path, baby, home)                                     adopt.py

Layering: these modules read and write whole babies, so they use the school's tokenizer and revive
on top of the soul's files (and are imported only on demand, by the CLI).
"""

from __future__ import annotations

from pathlib import Path

from school.exports.source import Source, into_fresh_folder, revived
from soul.paths import SoulError

FORMATS = ("hf", "llama2c", "safetensors")


def export(source: Source, fmt: str, out_dir: Path) -> list[Path]:
    """Write the baby in `fmt` into `out_dir` (absent or empty); returns the files written.

    Raises SoulError (one line) for an unknown format, a brain the format cannot hold (only the
    transformer exports to hf and llama2c), a missing baby or a non-empty `out_dir`.
    """
    if fmt not in FORMATS:
        raise SoulError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "hf":
        from school.exports.hf import export_hf as run
    elif fmt == "llama2c":
        from school.exports.llama2c import export_llama2c as run
    else:
        from school.exports.safetensors_export import export_safetensors as run
    return run(source, out_dir)


__all__ = ["FORMATS", "Source", "export", "into_fresh_folder", "revived"]
