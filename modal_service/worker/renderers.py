"""Renderers are loaded once per process (or Modal container) and reused for every job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


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


class RendererCache:
    """Loads each preset's renderer on first use; the model package is imported lazily so
    that the API and the tests of the transfer code never import torch."""

    def __init__(self, *, weights_dir: Path | None = None, device: str | None = None) -> None:
        self._weights_dir = weights_dir
        self._device = device
        self._loaded: dict[str, Renderer] = {}
        self._lock = threading.Lock()

    def get(self, preset: str) -> Renderer:
        with self._lock:
            if preset not in self._loaded:
                from modal_service.multitalk import load_renderer

                self._loaded[preset] = load_renderer(
                    preset, weights_dir=self._weights_dir, device=self._device
                )
            return self._loaded[preset]
