"""What the GPUs do while a job renders: utilisation and memory, read through NVML.

A :class:`GpuSampler` reads every visible GPU about once a second on a background thread for as
long as its ``with`` block runs, and sums the readings up as a
:class:`~modal_service.contracts.GpuUsage`. Where NVML is missing or fails (a CPU machine, a
container without the driver) it reports nothing, logs that once, and never stands in the way of
a render.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, Protocol

from modal_service.contracts import GpuUsage

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
"""NVML's utilisation is already averaged by the driver over its own window (1/6 s to 1 s,
depending on the GPU): polling faster would repeat readings, not add information."""

_STOP_WAIT_S = 5.0
"""How long the end of a render waits for a reading in flight (an NVML call takes microseconds)."""


@dataclass(frozen=True)
class DeviceReading:
    """One GPU at one moment."""

    utilization_pct: float
    memory_used_bytes: int


class GpuReader(Protocol):
    """Reads the GPUs a worker holds: NVML in production (:func:`nvml_reader`)."""

    @property
    def device_name(self) -> str: ...

    @property
    def device_count(self) -> int: ...

    def read(self) -> list[DeviceReading]: ...


class _NvmlReader:
    def __init__(self, nvml: ModuleType, handles: list[Any], device_name: str) -> None:
        self._nvml = nvml
        self._handles = handles
        self.device_name = device_name
        self.device_count = len(handles)

    def read(self) -> list[DeviceReading]:
        return [
            DeviceReading(
                utilization_pct=float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                memory_used_bytes=int(self._nvml.nvmlDeviceGetMemoryInfo(handle).used),
            )
            for handle in self._handles
        ]


@functools.cache
def nvml_reader() -> GpuReader | None:
    """NVML, initialised once per process with the handles of the GPUs this process may use;
    None (logged once) where there is no NVML or no visible GPU."""
    try:
        # Imported here: the internal API's image carries the worker's modules but not pynvml.
        import pynvml
    except ImportError:
        logger.info("GPU usage is not sampled: pynvml is not installed")
        return None
    try:
        pynvml.nvmlInit()
        handles = visible_handles(pynvml, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if not handles:
            logger.info("GPU usage is not sampled: no GPU is visible to this process")
            return None
        name = pynvml.nvmlDeviceGetName(handles[0])
    except Exception as error:  # NVMLError, or whatever a broken driver install raises
        logger.info("GPU usage is not sampled: NVML is unavailable (%s)", error)
        return None
    if isinstance(name, bytes):  # older drivers' bindings answer bytes
        name = name.decode(errors="replace")
    return _NvmlReader(pynvml, handles, str(name)[:128])


def visible_handles(nvml: ModuleType, cuda_visible_devices: str | None) -> list[Any]:
    """NVML handles of the GPUs ``CUDA_VISIBLE_DEVICES`` leaves to this process.

    NVML itself ignores that variable and lists every GPU of the machine, so it is read here the
    way CUDA reads it: indices or ``GPU-``/``MIG-`` UUIDs, and nothing from the first entry that
    names no device on (``-1`` and an empty value hide them all). Indices are taken in NVML's
    (PCI) order, which is CUDA's too wherever all GPUs are of one model, as in a Modal container.
    """
    count = nvml.nvmlDeviceGetCount()
    if cuda_visible_devices is None:
        return [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(count)]
    handles: list[Any] = []
    for entry in (part.strip() for part in cuda_visible_devices.split(",")):
        if entry.isdigit() and int(entry) < count:
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(entry)))
        elif entry.startswith(("GPU-", "MIG-")):
            try:
                handles.append(nvml.nvmlDeviceGetHandleByUUID(entry))
            except nvml.NVMLError:
                break
        else:
            break
    return handles


def summarize(device_name: str, rounds: list[list[DeviceReading]]) -> GpuUsage | None:
    """The readings of a render as its :class:`GpuUsage`; None without a single reading."""
    rounds = [readings for readings in rounds if readings]
    if not rounds:
        return None
    utilization = sorted(reading.utilization_pct for readings in rounds for reading in readings)
    # The lowest decile by nearest rank: a GPU idle one reading in ten shows here, not in the mean.
    lowest_decile = utilization[math.ceil(0.1 * len(utilization)) - 1]
    peak = max(reading.memory_used_bytes for readings in rounds for reading in readings)
    return GpuUsage(
        device_name=device_name,
        device_count=max(len(readings) for readings in rounds),
        samples=len(rounds),
        utilization_mean_pct=round(sum(utilization) / len(utilization), 2),
        utilization_p10_pct=round(lowest_decile, 2),
        memory_peak_gb=round(peak / 1e9, 3),
    )


class GpuSampler:
    """Reads ``reader`` every ``interval_s`` on a thread while its ``with`` block runs.

    The first reading comes one interval in (NVML's figure covers the moments before it, which at
    the start are not the render's) and one more at the end, so a render shorter than an interval
    still has a reading. A reading that fails is skipped, and logged once.
    """

    def __init__(self, reader: GpuReader | None, *, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._reader = reader
        self._interval_s = interval_s
        self._rounds: list[list[DeviceReading]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure_logged = False

    def __enter__(self) -> GpuSampler:
        if self._reader is not None:
            self._thread = threading.Thread(target=self._run, name="gpu-usage", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_STOP_WAIT_S)

    def summary(self) -> GpuUsage | None:
        """What was read so far; None without a reader or a reading."""
        if self._reader is None:
            return None
        with self._lock:
            rounds = list(self._rounds)
        return summarize(self._reader.device_name, rounds)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()
        self._sample()

    def _sample(self) -> None:
        assert self._reader is not None
        try:
            readings = self._reader.read()
        except Exception as error:  # NVML errors included: nothing here may reach the render
            if not self._failure_logged:
                self._failure_logged = True
                logger.info("a GPU usage reading failed (%s); later ones are tried", error)
            return
        with self._lock:
            self._rounds.append(readings)


@dataclass(frozen=True)
class GpuAccount:
    """What a render held and what that is estimated to cost."""

    render_device: str | None
    gpu_seconds: float | None
    estimated_cost_usd: float | None


def account(
    reader: GpuReader | None, render_s: float, *, gpu_hour_usd: float, gpu_container: bool
) -> GpuAccount:
    """GPU-seconds (render wall time times the GPUs held) and their estimated price.

    A container holds its GPUs for the whole render, busy or not, so they count whatever the
    utilisation. Without NVML a local worker rendered on the CPU and holds none; a GPU container
    (``gpu_container``) still held some, but how many is unknown, so nothing is claimed.
    """
    if reader is not None:
        gpu_seconds = render_s * reader.device_count
        device: str | None = reader.device_name
    elif gpu_container:
        return GpuAccount(render_device=None, gpu_seconds=None, estimated_cost_usd=None)
    else:
        gpu_seconds, device = 0.0, "cpu"
    return GpuAccount(
        render_device=device,
        gpu_seconds=round(gpu_seconds, 3),
        estimated_cost_usd=round(gpu_seconds * gpu_hour_usd / 3600, 6),
    )
