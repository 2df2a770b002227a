"""The input corpus: files as people really send them, generated here, deterministically.

Every case is built in code (ffmpeg, Pillow, a few hand-written headers) from fixed seeds, so
the corpus needs no download and no checked-in binaries, and the same bytes come out on every
machine. ``scripts/corpus/audio.py``, ``images.py`` and ``video.py`` list the cases;
``tests/unit/media/`` checks what the worker makes of each one (duration, level, orientation,
background, frames), and ``tests/reliability/test_input_corpus.py`` sends every audio and image
case through the public API on the local stack: accepts render, refusals come back with their
code and leave nothing (the source videos go through the worker's preparation, and those the
first bytes refuse through the API's submit path in ``tests/integration/lambda_proxy/``).
``scripts/bench/input_bombs.py`` measures what refusing its bombs costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ACCEPT = "accept"


@dataclass(frozen=True)
class CorpusCase:
    name: str
    """Unique, readable: ``wav-rf64``, ``png-rgba-magenta-under-alpha``."""
    kind: Literal["audio", "image", "video"]
    data: bytes
    key: str
    """The object key's last part as an uploader would name it (may have no extension)."""
    content_type: str
    """The S3 ``Content-Type`` an uploader would have set (often wrong or generic)."""
    expect: str
    """:data:`ACCEPT`, or the code the input must be refused with."""
    expected: dict[str, Any] = field(default_factory=dict)
    """For accepts, what the prepared input must be: ``duration_s`` and ``channels`` for audio;
    ``size`` (upright width, height) and ``background`` (RGB where alpha was) for images;
    ``size``, ``rotation`` and ``frames`` (at 25 fps) for videos."""
    why: str = ""
    """What makes this file worth a case (one line)."""

    @property
    def accepted(self) -> bool:
        return self.expect == ACCEPT
