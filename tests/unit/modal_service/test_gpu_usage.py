"""GPU usage during a render: the aggregation, the sampler thread, CUDA_VISIBLE_DEVICES, the cost.

NVML needs an NVIDIA driver, which this machine does not have. So NVML itself, and only NVML,
is stood in for: by a scripted reader (what ``_NvmlReader`` reads from the driver) and by a
minimal pynvml-shaped namespace for the ``CUDA_VISIBLE_DEVICES`` mapping. Everything above it
(summary, thread, failures, accounting) is the real code. On a machine with a driver, the last
test reads the real GPUs instead.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from types import SimpleNamespace

import pytest

from modal_service.contracts import GpuUsage
from modal_service.worker.gpu_usage import (
    DeviceReading,
    GpuSampler,
    account,
    nvml_reader,
    summarize,
    visible_handles,
)

HAS_DRIVER = shutil.which("nvidia-smi") is not None
GB = 10**9


def reading(utilization: float, memory_gb: float) -> DeviceReading:
    return DeviceReading(utilization_pct=utilization, memory_used_bytes=int(memory_gb * GB))


class ScriptedNvml:
    """Stands in for NVML: answers the scripted rounds in order, then repeats the last one.
    ``fail_on`` names the calls (1-based) that raise as a driver error would."""

    def __init__(
        self, rounds: list[list[DeviceReading]], *, fail_on: frozenset[int] = frozenset()
    ) -> None:
        self.device_name = "NVIDIA H200"
        self.device_count = len(rounds[0])
        self._rounds = rounds
        self._fail_on = fail_on
        self.calls = 0
        self.answered: list[list[DeviceReading]] = []
        self.called = threading.Event()

    def read(self) -> list[DeviceReading]:
        self.calls += 1
        self.called.set()
        if self.calls in self._fail_on:
            raise RuntimeError("NVML: GPU is lost")
        answer = self._rounds[min(len(self.answered), len(self._rounds) - 1)]
        self.answered.append(answer)
        return answer


def wait_for_calls(reader: ScriptedNvml, calls: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while reader.calls < calls:
        assert time.monotonic() < deadline, "the sampler stopped reading"
        time.sleep(0.005)


# --- The summary --------------------------------------------------------------------------


def test_summary_means_every_reading_and_keeps_the_lowest_decile_and_the_fullest_gpu() -> None:
    # Two GPUs, ten rounds: one GPU idles in the first round (the warm-up), the rest is busy.
    rounds = [[reading(0, 10.0), reading(40, 12.0)]]
    rounds += [[reading(90, 70.5), reading(100, 71.25)] for _ in range(9)]
    usage = summarize("NVIDIA H200", rounds)
    assert usage == GpuUsage(
        device_name="NVIDIA H200",
        device_count=2,
        samples=10,
        utilization_mean_pct=(0 + 40 + 9 * 190) / 20,  # 87.5
        utilization_p10_pct=40.0,  # 20 readings: the 2nd lowest, by nearest rank
        memory_peak_gb=71.25,
    )


def test_a_single_reading_is_its_own_mean_and_decile() -> None:
    usage = summarize("NVIDIA H100 80GB HBM3", [[reading(63, 41.5)]])
    assert usage is not None
    assert (usage.samples, usage.utilization_mean_pct, usage.utilization_p10_pct) == (1, 63, 63)
    assert usage.memory_peak_gb == 41.5


def test_no_reading_is_no_summary() -> None:
    assert summarize("NVIDIA H200", []) is None
    assert summarize("NVIDIA H200", [[], []]) is None


# --- The sampler thread -------------------------------------------------------------------


def test_the_sampler_reads_while_the_block_runs_and_stops_with_it() -> None:
    script = [[reading(u, 20.0 + u / 10)] for u in (55, 80, 97, 99, 98)]
    reader = ScriptedNvml(script)
    with GpuSampler(reader, interval_s=0.01) as sampler:
        wait_for_calls(reader, 4)
    after_exit = reader.calls
    time.sleep(0.1)
    assert reader.calls == after_exit  # the thread is gone with the block
    usage = sampler.summary()
    assert usage == summarize("NVIDIA H200", reader.answered)
    assert usage is not None
    assert usage.samples == len(reader.answered) >= 5  # four while running, one at the end


def test_a_render_shorter_than_an_interval_still_has_one_reading() -> None:
    reader = ScriptedNvml([[reading(88, 30.0)]])
    started = time.monotonic()
    with GpuSampler(reader, interval_s=30.0) as sampler:
        pass
    assert time.monotonic() - started < 5  # the end does not wait out the interval
    usage = sampler.summary()
    assert usage is not None
    assert (usage.samples, usage.utilization_mean_pct) == (1, 88)


def test_failed_readings_are_skipped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    reader = ScriptedNvml([[reading(70, 5.0)], [reading(90, 6.0)]], fail_on=frozenset({1, 2, 3}))
    with (
        caplog.at_level(logging.INFO, logger="modal_service.worker.gpu_usage"),
        GpuSampler(reader, interval_s=0.01) as sampler,
    ):
        wait_for_calls(reader, 5)
    usage = sampler.summary()
    assert usage is not None
    assert usage.samples == reader.calls - 3
    assert [record.levelno for record in caplog.records] == [logging.INFO]
    assert "GPU is lost" in caplog.records[0].getMessage()


def test_a_reader_that_always_fails_reports_nothing_and_raises_nothing() -> None:
    reader = ScriptedNvml([[reading(0, 0)]], fail_on=frozenset(range(1, 10_000)))
    with GpuSampler(reader, interval_s=0.01) as sampler:
        wait_for_calls(reader, 3)
    assert sampler.summary() is None


def test_without_a_reader_there_is_no_thread_and_no_summary() -> None:
    threads = threading.active_count()
    with GpuSampler(None, interval_s=0.01) as sampler:
        assert threading.active_count() == threads
    assert sampler.summary() is None


# --- CUDA_VISIBLE_DEVICES, read as CUDA reads it ------------------------------------------


class _NvmlError(Exception):
    pass


def fake_pynvml(count: int, uuids: dict[str, str]) -> SimpleNamespace:
    """The four pynvml names visible_handles uses; handles are plain strings here."""

    def by_uuid(uuid: str) -> str:
        if uuid not in uuids:
            raise _NvmlError("Not Found")
        return uuids[uuid]

    return SimpleNamespace(
        NVMLError=_NvmlError,
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=lambda index: f"gpu{index}",
        nvmlDeviceGetHandleByUUID=by_uuid,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["gpu0", "gpu1", "gpu2", "gpu3"]),
        ("2", ["gpu2"]),
        ("3,1", ["gpu3", "gpu1"]),
        (" 1 , 2 ", ["gpu1", "gpu2"]),
        ("0,7,1", ["gpu0"]),  # CUDA ignores everything from the first unknown device on
        ("GPU-5d3e", ["gpu-by-uuid"]),
        ("1,GPU-0000,2", ["gpu1"]),
        ("MIG-a1", ["mig-by-uuid"]),
        ("", []),
        ("-1", []),
        ("nvidia0", []),
    ],
)
def test_visible_devices_follow_cuda_visible_devices(
    value: str | None, expected: list[str]
) -> None:
    nvml = fake_pynvml(4, {"GPU-5d3e": "gpu-by-uuid", "MIG-a1": "mig-by-uuid"})
    assert visible_handles(nvml, value) == expected


# --- GPU-seconds and their price ----------------------------------------------------------


def test_gpu_seconds_count_every_gpu_held_for_the_whole_render() -> None:
    two_gpus = ScriptedNvml([[reading(10, 1.0), reading(90, 1.0)]])
    held = account(two_gpus, 90.0, gpu_hour_usd=4.0, gpu_container=True)
    assert (held.render_device, held.gpu_seconds) == ("NVIDIA H200", 180.0)
    assert held.estimated_cost_usd == pytest.approx(0.2)  # 180 s of a $4 hour


def test_a_cpu_render_holds_no_gpu_and_costs_nothing() -> None:
    held = account(None, 12.5, gpu_hour_usd=4.0, gpu_container=False)
    assert (held.render_device, held.gpu_seconds, held.estimated_cost_usd) == ("cpu", 0.0, 0.0)


def test_a_gpu_container_without_nvml_claims_nothing() -> None:
    held = account(None, 12.5, gpu_hour_usd=4.0, gpu_container=True)
    assert (held.render_device, held.gpu_seconds, held.estimated_cost_usd) == (None, None, None)


# --- NVML on this machine -----------------------------------------------------------------


@pytest.mark.skipif(HAS_DRIVER, reason="this machine has an NVIDIA driver")
def test_without_a_driver_nvml_reports_nothing_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml_reader.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="modal_service.worker.gpu_usage"):
            assert nvml_reader() is None
            assert nvml_reader() is None
        (record,) = caplog.records
        assert record.levelno == logging.INFO
        assert "not sampled" in record.getMessage()
        with GpuSampler(nvml_reader()) as sampler:
            pass
        assert sampler.summary() is None
    finally:
        nvml_reader.cache_clear()


@pytest.mark.skipif(not HAS_DRIVER, reason="no NVIDIA driver on this machine")
def test_with_a_driver_nvml_reads_the_visible_gpus() -> None:
    reader = nvml_reader()
    assert reader is not None
    readings = reader.read()
    assert len(readings) == reader.device_count >= 1
    assert all(0 <= r.utilization_pct <= 100 and r.memory_used_bytes > 0 for r in readings)
