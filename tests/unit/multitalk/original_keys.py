"""Key names of an original-format (non-diffusers) Wan2.1 I2V transformer, for synthetic files."""

from __future__ import annotations

_TOP = (
    "patch_embedding", "text_embedding.0", "text_embedding.2", "time_embedding.0",
    "time_embedding.2", "time_projection.1", "head.head", "img_emb.proj.0", "img_emb.proj.1",
    "img_emb.proj.3", "img_emb.proj.4",
)  # fmt: skip
_BLOCK_AFFINE = (
    "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k",
    "cross_attn.v", "cross_attn.o", "cross_attn.k_img", "cross_attn.v_img", "ffn.0", "ffn.2",
    "norm3",
)  # fmt: skip
_BLOCK_SCALE = (
    "self_attn.norm_q", "self_attn.norm_k", "cross_attn.norm_q", "cross_attn.norm_k",
    "cross_attn.norm_k_img",
)  # fmt: skip


def original_wan_i2v_keys(num_layers: int) -> list[str]:
    keys = [f"{name}.{p}" for name in _TOP for p in ("weight", "bias")] + ["head.modulation"]
    for i in range(num_layers):
        keys += [f"blocks.{i}.{name}.{p}" for name in _BLOCK_AFFINE for p in ("weight", "bias")]
        keys += [f"blocks.{i}.{name}.weight" for name in _BLOCK_SCALE]
        keys.append(f"blocks.{i}.modulation")
    return keys
