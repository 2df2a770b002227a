"""How fast a render runs: per-deployment acceleration and per-job speed profiles.

Two levels, because they cost differently to change:

- **Per deployment** (:class:`~.deployment.DeploymentAcceleration`, read from the environment once
  per container): the attention backend, regional ``torch.compile`` of the transformer blocks,
  fp8 linear layers (torchao, Hopper) and a tiled VAE. Changing any of them would recompile or
  requantize the model, so a container applies them once, at load.
- **Per job** (:class:`~.profiles.SpeedSettings`, named by ``options.speed``): the distillation
  LoRA fused into the weights (turbo), transformer step caching (balanced) and the VAE decode
  precision. Each is applied for one render and undone after it, exactly, without a reload.

:class:`~.engine.Accelerator` owns both for one loaded pipeline. Each technique is a module of
its own: ``attention``, ``compile``, ``lora_fusion``, ``fp8``, ``step_cache``.
"""

from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.errors import AccelerationError
from modal_service.multitalk.acceleration.profiles import PROFILES, SpeedSettings, StepCache

__all__ = [
    "PROFILES",
    "AccelerationError",
    "DeploymentAcceleration",
    "SpeedSettings",
    "StepCache",
]
