"""The one error an acceleration setting raises when it cannot apply where it is asked to."""

from __future__ import annotations

from modal_service.multitalk.errors import ModelUnavailableError


class AccelerationError(ModelUnavailableError):
    """A deployment asked for something this machine or model cannot do (fp8 on a pre-Hopper
    GPU, an attention backend whose package is missing, a LoRA that does not fit the model).

    It is a :class:`ModelUnavailableError`: the container cannot serve as configured, and a job
    that meets it fails with ``model_unavailable`` and this message, not with a crash.
    """
