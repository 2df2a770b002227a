"""Where a job's clip checkpoints live on this worker, and when they go.

Modal retries the input of a crashed container with the same request, so the same ``job_id``: a
retry finds ``<root>/<job_id>/`` as the interrupted attempt left it (on Modal ``<root>`` is a
Volume, committed after every clip and reloaded here before the job reads it). The directory is
removed when the job ends, whatever the outcome. One whose job never came back (every attempt
crashed) is removed by the first job that starts here more than ``ttl_s`` after its last write;
a running job writes at every clip, so a TTL longer than one clip never touches a live one.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class SharedVolume(Protocol):
    """What a ``modal.Volume`` mounted in this container offers (both block)."""

    def commit(self) -> None: ...

    def reload(self) -> None: ...


class JobCheckpoints:
    def __init__(
        self,
        root: Path,
        job_id: str,
        *,
        ttl_s: float,
        volume: SharedVolume | None = None,
    ) -> None:
        self.root = root
        self.directory = root / job_id
        self._ttl_s = ttl_s
        self._volume = volume

    def open(self) -> bool:
        """See what earlier attempts committed and remove orphans past the TTL; False when the
        root is unusable (the job then renders without checkpoints, as before they existed)."""
        if self._volume is not None:
            try:
                self._volume.reload()
            except Exception as error:  # without it a retry starts over: slower, still correct
                logger.warning("checkpoint volume not reloaded: %s", error)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            stale_before = time.time() - self._ttl_s
            orphans = [
                entry
                for entry in self.root.iterdir()
                if entry != self.directory and entry.is_dir() and _mtime(entry) < stale_before
            ]
        except OSError as error:
            logger.warning("checkpoints off for this job: %s", error)
            return False
        for entry in orphans:
            logger.info("removing the orphaned checkpoint %s", entry.name)
            shutil.rmtree(entry, ignore_errors=True)
        if orphans:
            self._commit_quietly()
        return True

    def commit(self) -> None:
        """Make what was written durable and visible to a retry on another container."""
        if self._volume is not None:
            self._volume.commit()

    def discard(self) -> None:
        """The job ended: nothing will resume it."""
        if self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)
            self._commit_quietly()

    def _commit_quietly(self) -> None:
        # Only removals are committed here: if one is lost, the TTL sweep removes it again.
        try:
            self.commit()
        except Exception as error:
            logger.warning("checkpoint removals not committed: %s", error)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to remove
