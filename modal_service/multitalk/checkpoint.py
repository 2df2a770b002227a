"""Clip checkpoints: what a retried render needs to go on after its last finished clip.

One job's directory holds:

- ``clip-0000.mkv``, ...: each finished clip's new frames, lossless (``media.lossless``), so a
  resumed render replays them into the output encoder and writes the same MP4 as an
  uninterrupted one;
- ``state.pt``: the fingerprint of what is rendered, the last finished clip, the frames emitted,
  the seed, the generator's state after that clip, that clip's final latents (the next clip is
  conditioned on their decoded frames: 15x smaller than the frames themselves at 720p), and
  each segment's frame count and SHA-256.

``state.pt`` is replaced atomically, after the segments it names are complete, so a crash at any
point leaves either the previous state or the new one; ``*.tmp`` files a crash left behind are
never read. Writes run on one background thread, overlapping the next clip's denoising, and end
with ``commit`` (a Modal Volume's, so a retry on another container sees them). A checkpoint that
cannot be written stops checkpointing, never the render.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modal_service.media.lossless import read_segment, write_segment

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"
_FORMAT = 1


@dataclass(frozen=True)
class CheckpointPlace:
    """Where one job's checkpoint lives, and how a write is made durable (a Volume's commit)."""

    directory: Path
    commit: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class Segment:
    name: str
    frames: int
    sha256: str


@dataclass(frozen=True)
class Saved:
    """A checkpoint read back: the render goes on at clip ``clip + 1``."""

    clip: int
    emitted: int
    seed: int
    generator_state: torch.Tensor
    latents: torch.Tensor
    segments: tuple[Segment, ...]


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A digest of everything that decides the frames (JSON-able, or shown by ``str``)."""
    canonical = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class CheckpointStore:
    """Reads and writes one job's checkpoint for a render with the given fingerprint."""

    def __init__(self, place: CheckpointPlace, fingerprint: str) -> None:
        self.directory = place.directory
        self._commit = place.commit
        self._fingerprint = fingerprint
        self._segments: list[Segment] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending: Future[None] | None = None
        self._broken = False
        self.blocked_s = 0.0
        """Seconds the render waited on checkpoints (snapshots, a write not yet done)."""

    # --- reading -----------------------------------------------------------------------------

    def load(self) -> Saved | None:
        """The checkpoint of this render, or None; a stale, foreign or damaged one is removed."""
        path = self.directory / STATE_FILE
        if not path.exists():
            return None
        try:
            saved = self._parse(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as error:  # a damaged file is a checkpoint we do not have
            logger.warning("checkpoint %s unreadable, starting over: %s", self.directory, error)
            saved = None
        if saved is None:
            self._reset()
            return None
        self._segments = list(saved.segments)
        return saved

    def _parse(self, raw: dict[str, Any]) -> Saved | None:
        if raw.get("format") != _FORMAT or raw.get("fingerprint") != self._fingerprint:
            logger.info("checkpoint %s is of another render, starting over", self.directory)
            return None
        segments = tuple(Segment(**segment) for segment in raw["segments"])
        for segment in segments:
            if file_digest(self.directory / segment.name) != segment.sha256:
                raise ValueError(f"{segment.name} does not match its digest")
        return Saved(
            clip=int(raw["clip"]),
            emitted=int(raw["emitted"]),
            seed=int(raw["seed"]),
            generator_state=raw["generator_state"],
            latents=raw["latents"],
            segments=segments,
        )

    def replay(self, saved: Saved, width: int, height: int) -> Iterator[np.ndarray]:
        """The frames of the finished clips, in order, one clip at a time."""
        for segment in saved.segments:
            yield read_segment(self.directory / segment.name, width, height, segment.frames)

    def _reset(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self._segments = []

    # --- writing -----------------------------------------------------------------------------

    def save(
        self,
        *,
        clip: int,
        emitted: int,
        seed: int,
        generator_state: torch.Tensor,
        latents: torch.Tensor,
        frames: np.ndarray,
    ) -> None:
        """Record clip ``clip`` as finished (``frames``: its new frames); written in the
        background after the previous save. The tensors are copied to the host here."""
        started = time.perf_counter()
        self._wait()
        if not self._broken:
            state = {
                "format": _FORMAT,
                "fingerprint": self._fingerprint,
                "clip": clip,
                "emitted": emitted,
                "seed": seed,
                "generator_state": generator_state.cpu().clone(),
                "latents": latents.detach().to("cpu", copy=True),
            }
            self._pending = self._writer.submit(self._write, clip, state, frames)
        self.blocked_s += time.perf_counter() - started

    def close(self) -> None:
        """Wait for the last write; the files stay for a retry (the worker removes them)."""
        started = time.perf_counter()
        self._wait()
        self._writer.shutdown()
        self.blocked_s += time.perf_counter() - started

    def _wait(self) -> None:
        if self._pending is None:
            return
        try:
            self._pending.result()
        except Exception as error:
            logger.warning("checkpoint %s not written, none after it: %s", self.directory, error)
            self._broken = True
        self._pending = None

    def _write(self, clip: int, state: dict[str, Any], frames: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(frames):  # a clip cut away entirely (InfiniteTalk, short audio) adds no frames
            name = f"clip-{clip:04d}.mkv"
            partial = self.directory / f"{name}.tmp"
            write_segment(partial, frames)
            digest = file_digest(partial)
            os.replace(partial, self.directory / name)
            self._segments.append(Segment(name, len(frames), digest))
        state["segments"] = [asdict(segment) for segment in self._segments]
        partial = self.directory / f"{STATE_FILE}.tmp"
        torch.save(state, partial)
        os.replace(partial, self.directory / STATE_FILE)
        self._commit()
