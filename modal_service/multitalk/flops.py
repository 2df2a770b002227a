"""FLOPs of the MultiTalk transformer, counted on the meta device (no weights, no memory).

``torch.utils.flop_counter`` counts matmuls, convolutions and attention as the real forward runs
them, so the figures follow the code (adapter, affinity map, per-frame audio attention included).
Norms, activations and RoPE are not counted: they are a few percent at most.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel
from torch.utils.flop_counter import FlopCounterMode

from modal_service.multitalk.acceleration.profiles import PROFILES
from modal_service.multitalk.presets import MULTITALK_14B
from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

H100_DENSE_BF16_FLOPS = 800e12  # the planning figure the research note uses for one H100


class ClipFlops(BaseModel):
    mode: str
    forward_flops: float
    passes_per_step: int
    steps: int
    clip_flops: float
    lower_bound_s: float
    """Seconds per clip at ``H100_DENSE_BF16_FLOPS`` (a floor: real runs are 2-2.5x slower)."""


def forward_flops(
    config: dict | None = None,
    height: int = 480,
    width: int = 832,
    frames: int = 81,
    speakers: int = 1,
    batch: int = 1,
) -> float:
    """FLOPs of one transformer forward for a ``frames`` x ``height`` x ``width`` clip."""
    config = config or {}
    with torch.device("meta"):
        model = MultiTalkTransformer3DModel(**config)
        c = model.config
        latent_frames, lat_h, lat_w = (frames - 1) // 4 + 1, height // 8, width // 8
        inputs = dict(
            hidden_states=torch.empty(batch, c.in_channels, latent_frames, lat_h, lat_w),
            timestep=torch.empty(batch),
            encoder_hidden_states=torch.empty(batch, 512, c.text_dim),
            encoder_hidden_states_image=torch.empty(batch, 257, c.image_dim),
            audio_embeds=torch.empty(
                batch, speakers, frames, c.audio_window, c.audio_layers, c.audio_channels
            ),
            ref_target_masks=torch.empty(3, lat_h // 2, lat_w // 2) if speakers == 2 else None,
        )
        with FlopCounterMode(display=False) as counter:
            model(**inputs)
    return float(counter.get_total_flops())


MODES = {
    # speed profile: (transformer forwards per clip, passes batched in each), 14B preset
    "quality": (MULTITALK_14B.sample_steps, 3),
    "balanced": (
        len(PROFILES["balanced"].step_cache.computed_steps(MULTITALK_14B.sample_steps)),
        3,
    ),
    "turbo_lora": (MULTITALK_14B.turbo_steps_with_lora, 1),
    "turbo_without_lora": (MULTITALK_14B.turbo_steps_without_lora, 2),
}


def clip_flops(mode: str, speakers: int = 1, **shape: int) -> ClipFlops:
    """Whole-clip transformer FLOPs for a sampling mode of the 14B preset (batched CFG)."""
    steps, passes = MODES[mode]
    per_forward = forward_flops(speakers=speakers, **shape)
    total = per_forward * passes * steps
    return ClipFlops(
        mode=mode,
        forward_flops=per_forward,
        passes_per_step=passes,
        steps=steps,
        clip_flops=total,
        lower_bound_s=total / H100_DENSE_BF16_FLOPS,
    )
