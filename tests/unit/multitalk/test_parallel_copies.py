"""Ranks that build their own copies: the distillation LoRA and regional compile under a split.

Apart from ``test_context_parallel.py`` because a process holds one process group at a time:
that module's renderer keeps its group until the module ends, and each test here starts one.
"""

from __future__ import annotations

import functools

import pytest
import torch

from modal_service.multitalk import load_renderer
from modal_service.multitalk.acceleration.compile import graphs_compiled
from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.parallel.ranks import ContextParallelTransformer, RankGroup
from modal_service.multitalk.renderer import Renderer
from scripts.bench.random_model import (
    SMOKE_SIZE,
    build_random_transformer,
    random_distillation_lora,
    random_replica,
)
from tests.unit.multitalk.acceleration.support import bf16, tiny_forward_inputs

pytestmark = pytest.mark.slow  # a second process starts and builds its copy (~30 s on 2 cores)


def test_the_ranks_fuse_and_restore_the_distillation_lora_with_rank_0() -> None:
    # The benchmark's random stack (bf16, a rank-64 LoRA on every block linear): what a turbo
    # job and a quality job on the same split transformer each get.
    deployment = DeploymentAcceleration()
    whole = build_random_transformer(SMOKE_SIZE, "cpu")
    whole_lora = random_distillation_lora(whole)
    inputs = bf16(tiny_forward_inputs(batch=1, frames=3, speakers=1))
    expected = {}
    with torch.no_grad():
        for fused in (True, False):
            whole_lora.use(fused)
            expected[fused] = whole(**inputs)[0]
    lora_effect = (expected[True] - expected[False]).abs().mean()

    build = functools.partial(random_replica, SMOKE_SIZE, deployment, True)
    ranks = RankGroup(2, "cpu", build)
    errors = []
    try:
        model, _ = random_replica(SMOKE_SIZE, deployment, False, torch.device("cpu"))
        lora = random_distillation_lora(model)
        ranks.ready(model)
        split = ContextParallelTransformer(model, ranks, lora)
        with torch.no_grad():
            for fused in (True, False, True):
                lora.use(fused)  # rank 0 only: the forward carries the state to rank 1
                errors.append((split(**inputs)[0] - expected[fused]).abs().mean())
    finally:
        ranks.close()
    # A rank out of step would put half the tokens on the wrong side of the LoRA: a mean error
    # of half its effect. bf16 rounding of the split stays far below a tenth of it.
    assert max(errors) < lora_effect / 10, (errors, lora_effect)


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_blocks_split_compile_once_per_shape(
    tiny: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compile is on by default on GPUs. The share each forward takes must not fail the compiled
    # graphs' guards (a recompile every step), and the collectives must trace.
    monkeypatch.setenv("MULTITALK_COMPILE", "on")  # the ranks get rank 0's deployment settings
    renderer = load_renderer("tiny", device="cpu", gpus=2)
    try:
        inputs = tiny_forward_inputs(batch=3, frames=3, speakers=1)
        with torch.no_grad():
            expected = tiny.pipeline.transformer(**inputs)[0]
            before = graphs_compiled()
            outputs = [renderer.pipeline.transformer(**inputs)[0] for _ in range(3)]
            compiled = graphs_compiled() - before
    finally:
        renderer.close()
    assert renderer.accelerator.applied.compiled
    assert compiled == 2  # one graph for each of the 2 blocks, on the first forward only
    for output in outputs:
        torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)
