"""Regional ``torch.compile``: the 40 identical transformer blocks compile once, to one graph.

Compiling the repeated block instead of the whole model takes a fraction of the compile time
and gives most of the speed (diffusers' ``compile_repeated_blocks``). ``fullgraph`` stays off:
the step cache's hooks wrap each block's forward with a Python decision, which is a graph break
by design (with ``fullgraph=True`` the cached profile would fail to trace).

A container compiles once; what recompiles afterwards (a new resolution or clip length) is
counted by :func:`graphs_compiled` so that the benchmark and the job timings can report it.
Changing weights in place (the fused LoRA) does not recompile: weights are inputs of the graph.
"""

from __future__ import annotations

import torch


def compile_blocks(transformer: torch.nn.Module) -> None:
    """Compile every repeated block of ``transformer`` (lazily: the first forward compiles)."""
    transformer.compile_repeated_blocks(fullgraph=False)


def graphs_compiled() -> int:
    """Graphs Dynamo has compiled in this process so far (first compiles and recompiles)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
