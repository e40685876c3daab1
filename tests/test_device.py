"""device.py: the one decision of device, dtype and threads, with the measurement faked both ways.

    python -m pytest -q tests/test_device.py
"""
import pytest
import torch

import device as DV


def fake(fp32: float, bf16: float, one_thread: float | None = None):
    """A measurement: FLOP/s per dtype (fp32 on one thread may differ from fp32 on all cores)."""
    def measure(dtype, threads, shape, rows=128):
        if dtype is torch.bfloat16:
            return bf16
        return one_thread if threads == 1 and one_thread is not None else fp32
    return measure


@pytest.mark.parametrize("fp32, bf16, want", [
    (60e9, 1e9, "fp32"),      # AVX2 only: bf16 emulated, 60x slower
    (60e9, 70e9, "fp32"),     # faster, but not clearly (inside the margin)
    (60e9, 120e9, "bf16"),    # AVX-512 BF16: about twice
    (60e9, 400e9, "bf16"),    # AMX
])
def test_auto_dtype_follows_the_measurement(fp32, bf16, want):
    rt = DV.decide("cpu", "auto", threads=1, measure=fake(fp32, bf16))
    assert rt.dtype == want
    assert rt.peak_flops == (bf16 if want == "bf16" else fp32)     # MFU divides by what was measured
    assert rt.amp == (torch.bfloat16 if want == "bf16" else None)
    assert want in rt.why and "GFLOP/s" in rt.why


def test_explicit_dtype_is_kept_and_emulation_is_said():
    rt = DV.decide("cpu", "bf16", threads=1, measure=fake(60e9, 1e9))
    assert rt.dtype == "bf16" and "emulated" in rt.why
    assert DV.decide("cpu", "float32", threads=1, measure=fake(60e9, 1e9)).dtype == "fp32"  # torch spelling
    rt = DV.decide("cpu", "fp32", threads=1, peak_tflops=2.0, measure=fake(60e9, 1e9))
    assert rt.peak_flops == 2e12 and "--peak-tflops" in rt.why


@pytest.mark.parametrize("one, many, want", [(30e9, 58e9, "all"), (30e9, 33e9, "all"), (30e9, 3e9, 1),
                                             (30e9, 28e9, 1)])
def test_threads_measured_never_collapse(monkeypatch, one, many, want):
    # a busy machine: all cores measured slower than one (OpenMP threads waiting on each other) -> 1
    monkeypatch.setattr(DV, "available_cores", lambda: 4)
    rt = DV.decide("cpu", "fp32", threads=0, measure=fake(many, 1e9, one_thread=one))
    assert rt.threads == (4 if want == "all" else want) and torch.get_num_threads() == rt.threads
    assert "thread" in rt.why


def test_real_measurement_is_quick_and_sane():
    import time
    t0 = time.perf_counter()
    rt = DV.decide("cpu", "auto", threads=1)
    assert time.perf_counter() - t0 < 5            # well under a second when the machine is idle
    assert rt.dtype in ("fp32", "bf16") and rt.peak_flops > 1e8
    assert torch.backends.cpu.get_cpu_capability() in DV.cpu_name()


@pytest.mark.parametrize("kw, needle", [
    (dict(device="tpu"), "--device"), (dict(dtype="fp8"), "--dtype"), (dict(threads=-2), "--threads"),
    (dict(device="cpu", dtype="fp16"), "fp16 needs CUDA"),
])
def test_bad_values_one_line(kw, needle):
    with pytest.raises(DV.DeviceError, match=needle):
        DV.decide(**{"threads": 1, **kw}, measure=fake(1e9, 1e9))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only machine gives")
def test_cuda_without_a_gpu():
    with pytest.raises(DV.DeviceError, match="no CUDA GPU"):
        DV.decide("cuda")


def test_stated_gpu_peak_by_device_name():
    # names as torch.cuda.get_device_name prints them; the PCIe H100 must not get the SXM peak
    assert DV.stated_bf16_peak("NVIDIA H100 PCIe") == 756.0
    assert DV.stated_bf16_peak("NVIDIA H100 80GB HBM3") == 989.4
    assert DV.stated_bf16_peak("NVIDIA H200") == 989.4
    assert DV.stated_bf16_peak("NVIDIA A100-SXM4-80GB") == 312.0
    assert DV.stated_bf16_peak("NVIDIA GeForce RTX 4090") is None
