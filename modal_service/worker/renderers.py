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

    def close(self) -> None: ...


class RendererCache:
    """Loads each preset's renderer on first use; the model package is imported lazily so
    that the API and the tests of the transfer code never import torch.

    A 14B preset holds about 40 GB of weights on the GPU, so one is kept at a time: asking for
    another (``infinitetalk-14b-multi`` after ``infinitetalk-14b``) drops the first before it
    loads, slow but never out of memory. ``tiny`` presets are kept side by side.

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
                    self._drop([name for name in self._loaded if self._exclusive(name)])
                self._loaded[preset] = load_renderer(
                    preset, weights_dir=self._weights_dir, device=self._device, gpus=self._gpus
                )
            return self._loaded[preset]

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

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
