"""The ranks of a context-parallel transformer: one process per GPU, driven by rank 0.

Rank 0 is the worker's own process: it fetches the inputs, runs the encoders, the scheduler
and the VAE, writes the video and uploads it, exactly as with one GPU. Its pipeline's
transformer is a :class:`ContextParallelTransformer`: every call is broadcast to ranks
1..N-1, which hold a copy of the transformer each, and every rank then runs its share of the
tokens (``sequence.py``). What else decides a forward's result is sent with it, so the copies
never drift: the step cache's calls (enable, reset, which guidance branch), whether the
distillation LoRA is fused, and an audio adapter swapped in (``adapter_swap.py``).

A rank that fails to load says so before the first job; a rank that dies later breaks the
group (collectives fail or time out), the job fails with ``parallel_group_lost`` and the worker
must load again. Ranks run only the transformer, so they hold its weights and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import tempfile
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from modal_service.multitalk.errors import ModelUnavailableError, RenderError
from modal_service.multitalk.parallel.sequence import SequenceParallel, join

logger = logging.getLogger(__name__)

ReplicaBuilder = Callable[[torch.device], tuple[nn.Module, Any]]
"""Builds one rank's transformer and its distillation LoRA (or None) on a device; must be
picklable (a module-level function or a ``functools.partial`` of one): ranks are spawned."""

COLLECTIVE_TIMEOUT = timedelta(minutes=10)
"""Longer than any one forward, including the first one's compile on a rank."""


def device_for(rank: int, device_type: str) -> torch.device:
    return torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")


def _backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def _connect(rank: int, world_size: int, rendezvous: str, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        _backend(device.type),
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world_size,
        timeout=COLLECTIVE_TIMEOUT,
    )


# ---------------------------------------------------------------------------------- messages
# One message = a small picklable header (broadcast as an object) + the tensors it names
# (broadcast one by one, straight between devices).


def _broadcast(header: tuple | None, tensors: list[torch.Tensor], device: torch.device) -> tuple:
    """From rank 0: ``header`` and ``tensors``; elsewhere: receive them. Returns both."""
    box = [None if header is None else (header, [(t.shape, t.dtype) for t in tensors])]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    header, layout = box[0]
    if dist.get_rank() != 0:
        tensors = [torch.empty(shape, dtype=dtype, device=device) for shape, dtype in layout]
    for tensor in tensors:
        dist.broadcast(tensor, src=0)
    return header, tensors


def _pack(kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Tensors out of ``kwargs`` (replaced by their index), for :func:`_broadcast`."""
    plain, tensors = {}, []
    for name, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            plain[name] = _TensorSlot(len(tensors))
            tensors.append(value.contiguous())
        else:
            plain[name] = value
    return plain, tensors


class _TensorSlot(int):
    """Marks a keyword argument that travels as the n-th broadcast tensor."""


def _unpack(plain: dict[str, Any], tensors: list[torch.Tensor]) -> dict[str, Any]:
    return {k: tensors[v] if isinstance(v, _TensorSlot) else v for k, v in plain.items()}


# ---------------------------------------------------------------------------------- ranks 1..N-1


def serve_rank(
    rank: int, world_size: int, rendezvous: str, device_type: str, build: ReplicaBuilder
) -> None:
    """A spawned rank: join the group, build the transformer, then run what rank 0 sends."""
    device = device_for(rank, device_type)
    _connect(rank, world_size, rendezvous, device)
    try:
        status, transformer, lora = "ok", None, None
        try:
            transformer, lora = build(device)
            parallel = join(rank, world_size, transformer.config.num_attention_heads, device)
            transformer.enable_sequence_parallel(parallel)
        except Exception:  # reported to rank 0, which refuses to serve with it
            status = f"rank {rank}: {traceback.format_exc(limit=3)}"
        statuses: list[str | None] = [None] * world_size
        dist.all_gather_object(statuses, status)
        if any(s != "ok" for s in statuses):
            return
        _serve(transformer, lora, device)
    finally:
        dist.destroy_process_group()


def _serve(transformer: nn.Module, lora: Any, device: torch.device) -> None:
    cache_context: contextlib.AbstractContextManager[None] | None = None
    while True:
        (kind, payload), tensors = _broadcast(None, [], device)
        if kind == "stop":
            return
        if kind == "forward":
            context, fused, plain = payload
            if lora is not None:
                lora.use(fused)
            cache_context = transformer.cache_context(context) if context else None
            with torch.no_grad(), cache_context or contextlib.nullcontext():
                transformer(**_unpack(plain, tensors))
        elif kind == "load_adapter":  # another 14B preset's adapter, from the shared weights
            from modal_service.multitalk.adapter_swap import read_adapter, write_adapter

            write_adapter(transformer, read_adapter(transformer, Path(payload[0])))
        else:  # the step cache's calls, by name, with their arguments
            getattr(transformer, kind)(*payload)


# ---------------------------------------------------------------------------------- rank 0


class RankGroup:
    """Ranks 1..N-1 as processes, and this process as rank 0 of their process group."""

    def __init__(self, world_size: int, device_type: str, build: ReplicaBuilder) -> None:
        if world_size < 2:
            raise ValueError("a rank group needs at least 2 ranks")
        self.world_size = world_size
        self.device = device_for(0, device_type)
        self._workdir = tempfile.TemporaryDirectory(prefix="multitalk-ranks-")
        rendezvous = str(Path(self._workdir.name) / "rendezvous")
        spawn = multiprocessing.get_context("spawn")
        self._processes = [
            spawn.Process(
                target=serve_rank,
                args=(rank, world_size, rendezvous, device_type, build),
                name=f"multitalk-rank-{rank}",
                daemon=True,
            )
            for rank in range(1, world_size)
        ]
        for process in self._processes:
            process.start()
        _connect(0, world_size, rendezvous, self.device)
        self.broken = False

    def ready(self, transformer: nn.Module) -> SequenceParallel:
        """Shard rank 0's ``transformer`` and wait until every rank has loaded its copy."""
        parallel = join(0, self.world_size, transformer.config.num_attention_heads, self.device)
        transformer.enable_sequence_parallel(parallel)
        statuses: list[str | None] = [None] * self.world_size
        dist.all_gather_object(statuses, "ok")
        failed = [s for s in statuses if s != "ok"]
        if failed:
            self.close()
            raise ModelUnavailableError(
                f"a GPU rank could not load the model: {failed[0]}", "weights_invalid"
            )
        return parallel

    def send(self, kind: str, payload: Any, tensors: list[torch.Tensor]) -> None:
        if self.broken:
            raise RenderError("the GPU ranks were lost; reload", reason="parallel_group_lost")
        lost = [p.name for p in self._processes if not p.is_alive()]
        if lost:
            self.broken = True
            raise RenderError(f"GPU rank lost: {', '.join(lost)}", reason="parallel_group_lost")
        _broadcast((kind, payload), tensors, self.device)

    def close(self) -> None:
        """Stop the ranks and leave the group; safe to call twice."""
        if not dist.is_initialized():
            return
        if not self.broken and all(p.is_alive() for p in self._processes):
            with contextlib.suppress(Exception):
                _broadcast(("stop", None), [], self.device)
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        dist.destroy_process_group()
        self._workdir.cleanup()


class ContextParallelTransformer(nn.Module):
    """Rank 0's transformer: the pipeline calls it as it would call the model itself.

    ``lora`` is rank 0's distillation LoRA (or None): whether it is fused goes with every
    forward, so the ranks fuse or restore theirs to match.
    """

    def __init__(self, model: nn.Module, group: RankGroup, lora: Any = None) -> None:
        super().__init__()
        self.model = model
        self.group = group
        self._lora = lora
        self._context: str | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def config(self) -> Any:
        return self.model.config

    def forward(self, **kwargs: Any) -> Any:
        plain, tensors = _pack(kwargs)
        fused = bool(self._lora is not None and self._lora.fused)
        self.group.send("forward", (self._context, fused, plain), tensors)
        try:
            return self.model(**kwargs)
        except Exception:
            # The other ranks may be waiting inside this forward's collectives: the group is
            # out of step and only a reload brings it back.
            self.group.broken = True
            raise

    # The step cache (``acceleration/step_cache.py``) drives these; the ranks mirror them.
    def enable_cache(self, config: Any) -> None:
        self.group.send("enable_cache", (config,), [])
        self.model.enable_cache(config)

    def disable_cache(self) -> None:
        self.group.send("disable_cache", (), [])
        self.model.disable_cache()

    def _reset_stateful_cache(self) -> None:
        self.group.send("_reset_stateful_cache", (), [])
        self.model._reset_stateful_cache()

    @contextlib.contextmanager
    def cache_context(self, name: str) -> Iterator[None]:
        self._context = name
        try:
            with self.model.cache_context(name):
                yield
        finally:
            self._context = None
