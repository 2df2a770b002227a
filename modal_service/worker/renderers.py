"""Renderers are loaded once per process (or Modal container) and reused for every job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Renderer(Protocol):
    """What the worker needs from ``modal_service.multitalk``'s renderer."""

    def render(
        self,
        spec: Any,
        out_path: Path,
        *,
        progress: Callable[[str, int, int], None],
        should_cancel: Callable[[], bool],
        inputs: Any = None,
        checkpoint: Any = None,
    ) -> Any: ...

    @property
    def usable(self) -> bool: ...

    warmup: Any
    """The warm-up's record once it ran (``multitalk.warmup.WarmupRecord``), else None."""

    def close(self) -> None: ...


class RendererCache:
    """Loads each preset's renderer on first use; the model package is imported lazily so
    that the API and the tests of the transfer code never import torch.

    A 14B preset holds about 40 GB of weights on the GPU, so one is kept at a time. The 14B
    presets share their base and differ in the audio adapter: asking for another
    (``infinitetalk-14b-multi`` after ``multitalk-14b``) loads only its adapter into the loaded
    transformer, on every GPU rank (``multitalk.adapter_swap``, seconds), and drops the first
    and loads the other whole only where a swap could not be exact (quantized adapter layers, a
    LoRA on adapter layers): slow but never out of memory. ``tiny`` presets are kept side by
    side.

    With ``gpus`` > 1 each renderer splits its transformer across that many GPUs (one process
    per GPU); a renderer whose GPU processes were lost is loaded again on the next job.
    """

    def __init__(
        self,
        *,
        weights_dir: Path | None = None,
        device: str | None = None,
        gpus: int = 1,
        exclusive: Callable[[str], bool] = lambda preset: not preset.startswith("tiny"),
    ) -> None:
        self._weights_dir = weights_dir
        self._device = device
        self._gpus = gpus
        self._exclusive = exclusive
        self._loaded: dict[str, Renderer] = {}
        self._lock = threading.Lock()

    def get(self, preset: str) -> Renderer:
        with self._lock:
            if preset in self._loaded and not self._loaded[preset].usable:
                self._drop([preset])  # a GPU rank was lost: load the group again
            if preset not in self._loaded:
                from modal_service.multitalk import load_renderer

                if self._exclusive(preset):
                    exclusive = [name for name in self._loaded if self._exclusive(name)]
                    if exclusive and self._swap(exclusive[0], preset):
                        return self._loaded[preset]
                    self._drop(exclusive)
                self._loaded[preset] = load_renderer(
                    preset, weights_dir=self._weights_dir, device=self._device, gpus=self._gpus
                )
            return self._loaded[preset]

    def warm_up(self, preset: str) -> Renderer:
        """``preset``'s renderer, after its warm-up render where the deployment asks for one
        (``MULTITALK_WARMUP``; once per renderer): the container's enter hooks call this."""
        renderer = self.get(preset)
        from modal_service.multitalk.warmup import wanted, warm_up

        with self._lock:
            if renderer.warmup is None and wanted(renderer):
                renderer.warmup = warm_up(renderer)
        return renderer

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def _swap(self, loaded: str, preset: str) -> bool:
        """Serve ``preset`` with ``loaded``'s renderer by loading only its adapter, if exact."""
        if self._weights_dir is None or not self._loaded[loaded].usable:
            return False
        from modal_service.multitalk.adapter_swap import swap_adapter

        if not swap_adapter(self._loaded[loaded], preset, self._weights_dir):
            return False
        self._loaded[preset] = self._loaded.pop(loaded)
        return True

    def _drop(self, presets: list[str]) -> None:
        if not presets:
            return
        for name in presets:
            self._loaded.pop(name).close()
        logger.info("renderers dropped to make room: %s", ", ".join(presets))
        import gc

        import torch

        gc.collect()  # the pipeline's tensors go with its last reference
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
