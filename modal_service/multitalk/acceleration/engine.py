"""One pipeline's acceleration: the deployment's settings applied at load, a profile per job."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import torch
from pydantic import BaseModel, Field

from modal_service.multitalk.acceleration import attention, fp8
from modal_service.multitalk.acceleration.compile import compile_blocks, graphs_compiled
from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.acceleration.profiles import PROFILES, SpeedSettings

logger = logging.getLogger(__name__)


class Applied(BaseModel):
    """What the container runs with (logged at load, reported by the benchmark)."""

    attention_backend: str
    compiled: bool
    fp8_layers: int = 0
    vae_tiling: bool = False
    lora: str | None = None
    lora_layers: int = 0


class JobAcceleration(BaseModel):
    """What one render ran with: its profile as applied and what it cost to switch."""

    profile: str
    distilled: bool
    switch_s: float = Field(default=0.0, description="Time to fuse or restore the LoRA")
    graphs_compiled: int = Field(default=0, description="Graphs compiled during this render")


def accelerate_transformer(
    transformer: torch.nn.Module,
    device: torch.device,
    deployment: DeploymentAcceleration,
    lora: FusedLora | None = None,
    quantization: Any = None,
) -> Applied:
    """The deployment's settings applied to one transformer (each GPU rank's copy too)."""
    backend = attention.choose_backend(deployment.attention_backend, device)
    attention.apply_backend(transformer, backend)
    fp8_layers = 0
    if deployment.fp8 or quantization is not None:
        if quantization is None:
            fp8.check_fp8_support(device)
            quantization = fp8.fp8_config()
        if lora is not None:
            lora.use(False)  # quantize the original weights, never fused ones
        fp8_layers = fp8.quantize_blocks(transformer, quantization)
        if lora is not None:
            lora.requantize = lambda layer: fp8.quantize_layer(layer, quantization)
    compiled = deployment.compiles_on(device.type)
    if compiled:
        compile_blocks(transformer)
    return Applied(
        attention_backend=backend,
        compiled=compiled,
        fp8_layers=fp8_layers,
        lora=lora.name if lora else None,
        lora_layers=lora.layers if lora else 0,
    )


class Accelerator:
    """Applies ``deployment`` to ``pipeline`` once, then a speed profile per render.

    ``lora`` must be read from the unquantized weights (before this applies fp8).
    ``quantization`` overrides fp8's torchao config (the tests use int8, which runs on a CPU).
    """

    def __init__(
        self,
        pipeline: Any,
        deployment: DeploymentAcceleration,
        lora: FusedLora | None = None,
        quantization: Any = None,
    ) -> None:
        self.pipeline = pipeline
        self.deployment = deployment
        self.lora = lora
        self.applied = accelerate_transformer(
            pipeline.transformer, pipeline._execution_device, deployment, lora, quantization
        )
        if deployment.vae_tiling:
            pipeline.vae.enable_tiling()
            self.applied.vae_tiling = True
        logger.info("acceleration: %s", self.applied.model_dump())

    @property
    def has_distillation_lora(self) -> bool:
        return self.lora is not None

    @contextlib.contextmanager
    def job(self, profile: str) -> Iterator[JobAcceleration]:
        """The LoRA fused or not for ``profile``; counts what compiled meanwhile."""
        settings = PROFILES[profile]
        distilled = settings.distilled and self.lora is not None
        started = time.perf_counter()
        if self.lora is not None:
            self.lora.use(distilled)
        record = JobAcceleration(
            profile=profile, distilled=distilled, switch_s=round(time.perf_counter() - started, 4)
        )
        graphs = graphs_compiled()
        try:
            yield record
        finally:
            record.graphs_compiled = graphs_compiled() - graphs

    @staticmethod
    def vae_decode_dtype(settings: SpeedSettings) -> torch.dtype | None:
        return torch.bfloat16 if settings.vae_decode == "bfloat16" else None
