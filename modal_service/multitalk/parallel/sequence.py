"""One forward pass split across ranks by sequence (context parallelism).

Each rank holds a contiguous share of the ``S = frames x tokens per frame`` video tokens (a
:class:`Share`). What needs the whole sequence, and how it gets it:

- self-attention: diffusers' templated Ulysses attention (``ContextParallelConfig``) trades
  the sequence split for a head split with all-to-alls, so every query sees every key.
- text/image cross-attention and the per-frame audio attention: no exchange (their keys are
  the same on every rank; a share that starts or ends inside a frame is padded to whole frames).
- reference affinity (two speakers): every query's attention on frame 0, which one or two
  ranks hold: the reference keys are summed into place across ranks (``reference_keys``).
- L-RoPE positions: affinities are rescaled by their minimum and maximum over the whole
  sequence (``extrema``).
- the output: gathered from every rank after the output projection (``gather``).

Every 480p and 720p bucket has a multiple of 16 tokens per frame and Wan has 40 heads, so 2, 4
or 8 GPUs split evenly and use plain Ulysses. Anything else (16 GPUs' heads, the tiny preset's
odd sizes) uses diffusers' "Ulysses anything", which pads heads and exchanges the shares'
lengths at every attention: correct for any split, a little slower.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
from torch.distributed import _functional_collectives as funcol
from torch.distributed.device_mesh import init_device_mesh


@dataclass(frozen=True, eq=False)
class SequenceParallel:
    """This process's place in the group, and the collectives MultiTalk's own parts need."""

    rank: int
    world_size: int
    heads: int
    even: ParallelConfig
    """Ulysses for shares of equal length and heads that divide among the ranks."""
    uneven: ParallelConfig
    """Ulysses for any lengths and head counts."""
    _shares: dict[int, Share] = field(default_factory=dict, repr=False)

    @property
    def group(self) -> dist.ProcessGroup:
        return self.even.context_parallel_config._flattened_mesh.get_group()

    def share(self, total: int) -> Share:
        """This rank's tokens of a ``total``-token sequence (``torch.tensor_split``'s order:
        the first ``total % world`` ranks hold one token more)."""
        # One object per length: compiled blocks take the share as an argument, and a new
        # object every forward would fail the compiled graph's guards and recompile each time.
        if total not in self._shares:
            offset = sum(_length(total, self.world_size, r) for r in range(self.rank))
            self._shares[total] = Share(
                self, offset, _length(total, self.world_size, self.rank), total
            )
        return self._shares[total]


@dataclass(frozen=True, eq=False)
class Share:
    """Tokens ``[offset, offset + length)`` of a ``total``-token forward, on this rank."""

    parallel: SequenceParallel
    offset: int
    length: int
    total: int

    @property
    def attention(self) -> ParallelConfig:
        """What diffusers' attention dispatch needs for the self-attention of this split."""
        p = self.parallel
        if self.total % p.world_size == 0 and p.heads % p.world_size == 0:
            return p.even
        return p.uneven

    def split(self, tensor: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """This rank's share of ``tensor`` (the whole sequence) along ``dim``."""
        return tensor.narrow(dim, self.offset, self.length)

    def gather(self, tensor: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Every rank's share of ``tensor``, in order along ``dim``, on every rank."""
        p = self.parallel
        longest = -(-self.total // p.world_size)
        padded = tensor
        if self.length < longest:  # all-gather takes equal pieces: pad, then drop the padding
            pad = list(tensor.shape)
            pad[dim] = longest - self.length
            padded = torch.cat([tensor, tensor.new_zeros(pad)], dim=dim)
        whole = _waited(funcol.all_gather_single(padded.contiguous(), dim, p.group))
        if self.total % p.world_size == 0:
            return whole
        pieces = whole.split(longest, dim=dim)
        lengths = [_length(self.total, p.world_size, rank) for rank in range(p.world_size)]
        kept = [piece.narrow(dim, 0, n) for piece, n in zip(pieces, lengths, strict=True)]
        return torch.cat(kept, dim=dim)

    def reference_keys(self, key: torch.Tensor, frame_tokens: int) -> torch.Tensor:
        """The first ``frame_tokens`` keys of the whole sequence (the reference frame), from the
        ranks that hold them. ``key``: this rank's ``(batch, length, heads, head_dim)``."""
        held = max(0, min(self.length, frame_tokens - self.offset))
        reference = key.new_zeros(key.shape[0], frame_tokens, *key.shape[2:])
        if held:
            reference[:, self.offset : self.offset + held] = key[:, :held]
        return _waited(funcol.all_reduce(reference, "sum", self.parallel.group))

    def extrema(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Element-wise minimum of ``low`` and maximum of ``high`` over the ranks."""
        group = self.parallel.group
        low = funcol.all_reduce(low, "min", group)
        return _waited(low), _waited(funcol.all_reduce(high, "max", group))


def _length(total: int, world_size: int, rank: int) -> int:
    base, extra = divmod(total, world_size)
    return base + (rank < extra)


def _waited(tensor: torch.Tensor) -> torch.Tensor:
    # Functional collectives return a tensor whose first use waits; waiting here keeps the
    # result an ordinary tensor for the code (and tests) that receive it.
    return tensor.wait() if isinstance(tensor, funcol.AsyncCollectiveTensor) else tensor


def join(rank: int, world_size: int, heads: int, device: torch.device) -> SequenceParallel:
    """This process's ``SequenceParallel``; every rank calls it, in the same order, once the
    default process group is up."""
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised")
    mesh = init_device_mesh(device.type, (1, world_size), mesh_dim_names=("ring", "ulysses"))
    configs = []
    for anything in (False, True):
        config = ParallelConfig(
            context_parallel_config=ContextParallelConfig(
                ulysses_degree=world_size, ulysses_anything=anything, mesh=mesh
            )
        )
        config.setup(rank, world_size, device, mesh=mesh)
        configs.append(config)
    return SequenceParallel(rank, world_size, heads, configs[0], configs[1])
