"""Choosing where and in what precision a baby learns."""

from __future__ import annotations

import json

import pytest
import torch

from school import classroom, precision
from school.classroom import resolve_device, resolve_precision
from soul.paths import SoulError

TINY = {"brain": "transformer", "vocab_size": 64, "max_seq_len": 16, "dim": 16, "n_layers": 1, "n_heads": 2}


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_a_device_that_is_not_here_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name, says in (("cuda", "no CUDA GPU"), ("mps", "MPS is not available"), ("tpu", "unknown device")):
        with pytest.raises(SoulError, match=says):
            resolve_device(name)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    # without native bf16 (AVX2 only) a bf16 matmul is ~100x slower than fp32, so auto must not take it
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(precision, "step_speedup", lambda *args: 4.0)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", torch.device("cpu"), TINY) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


@pytest.mark.parametrize(("capability", "native"), [("AVX2", False), ("DEFAULT", False), ("AVX512", True)])
def test_bf16_is_native_only_where_aten_runs_avx512(
    monkeypatch: pytest.MonkeyPatch, capability: str, native: bool
) -> None:
    # a chip with AVX-512 BF16 whose ATen is held to AVX2 (ATEN_CPU_CAPABILITY) runs AVX2 kernels
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert precision.cpu_has_native_bf16() is native


@pytest.mark.parametrize("speedup", [1.05, 1.2])
def test_auto_precision_follows_the_measured_speed(monkeypatch: pytest.MonkeyPatch, speedup: float) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    asked = []
    monkeypatch.setattr(precision, "step_speedup", lambda *args: asked.append(args) or speedup)
    chosen = resolve_precision("auto", torch.device("cpu"), TINY)
    assert chosen == ("bf16" if speedup >= precision.BF16_MARGIN else "fp32")
    assert json.loads(asked[0][0]) == TINY  # probed on the baby's own brain


@pytest.mark.parametrize(
    "brain",
    [TINY, {"brain": "babyllm", "vocab_size": 64, "max_seq_len": 16, "embed_dim": 16, "n_neurons": 32}],
)
def test_the_probe_times_a_real_step_and_leaves_the_rng_alone(brain: dict) -> None:
    precision.step_speedup.cache_clear()
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    assert precision.step_speedup(json.dumps(brain), 1) > 0
    assert torch.equal(torch.rand(3), expected)
    precision.step_speedup(json.dumps(brain), 1)
    assert precision.step_speedup.cache_info().misses == 1


def test_auto_precision_on_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert resolve_precision("auto", torch.device("cuda")) == ("bf16" if supported else "fp32")
    assert resolve_precision("auto", torch.device("mps")) == "fp32"


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(SoulError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


def test_new_babies_record_their_conventions_and_old_ones_keep_theirs(tmp_path, small_library) -> None:
    import json

    from school.options import TrainOptions

    torch.set_num_threads(1)
    options = TrainOptions(home=str(tmp_path), library=str(small_library), device="cpu", threads=1)
    options.vocab_size = 300
    tiny = dict(dim=32, n_layers=1, n_heads=2, max_seq_len=32)
    room = classroom.open_classroom(options, {}, tiny, lambda *a: None, lambda m: None)
    assert room.record.conventions == classroom.CONVENTIONS
    assert room.record.split == "tail" and room.record.bos_prompt
    assert room.librarian.manifest.split == "tail"
    # a baby born by main 92febe8: no conventions in config.json
    config = json.loads(room.paths.config.read_text())
    del config["conventions"]
    room.paths.config.write_text(json.dumps(config))
    old = classroom.open_classroom(options, {}, {}, lambda *a: None, lambda m: None)
    assert old.record.split == "interleave" and not old.record.bos_prompt
    assert old.librarian.manifest.split == "interleave" and old.librarian.manifest.chunk > 0
    assert old.librarian.tokenizer.to_str() == room.librarian.tokenizer.to_str()  # its own for life


def test_default_threads_honour_omp_num_threads_then_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert classroom.default_threads() == 3
    monkeypatch.setattr(classroom.os, "sched_getaffinity", lambda pid: {0, 5}, raising=False)
    for unset in ("", "lots", "0"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert classroom.default_threads() == 2  # the two cores this process may use, not all
    monkeypatch.setattr(classroom.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert classroom.default_threads() == classroom.MAX_THREADS
