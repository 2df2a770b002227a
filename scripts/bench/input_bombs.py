"""Peak memory and time of refusing hostile inputs, against preparing ordinary ones.

``python -m scripts.bench.input_bombs`` writes each input to a file and hands it to the worker's
own preparation (``prepare_track`` for audio, ``load_portrait`` for images) in a fresh process,
at the contract's largest audio maximum (600 s: the largest decode cap, so the worst case). It
reports that process's peak RSS, the largest peak of its children (ffmpeg), their sum (an upper
bound of both at once), and the wall time. A refusal should cost no more than preparing an
ordinary track: memory is bounded by the decode cap whatever the file claims. Images are bounded
by the pixel cap the same way (``largest-accepted-64mp-rgba-png`` is the most an accepted
portrait costs); image bombs are refused from their headers.

To add inputs, append ``("<kind>/<name>", builder)`` to :data:`INPUTS`, where ``builder()``
returns the file's bytes and ``<kind>`` names a snippet in :data:`PREPARE`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench.results import save

ROOT = Path(__file__).resolve().parents[2]
MAX_AUDIO_S = 600.0

# Run in a fresh interpreter: a peak is a high-water mark, so each input needs its own process,
# and the imports happen before the measured call (they are the same for every input). ffmpeg's
# peak (RUSAGE_CHILDREN) is an upper bound: it may include the measuring process's own.
_MEASURE = """
import json, resource, sys, time
from pathlib import Path
{imports}


def high_water_kb():
    # VmHWM is this process's own peak since exec. ru_maxrss is not: on Linux it keeps the
    # high-water mark of the process that spawned it (a pytest run holding torch, say).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


path, max_s = Path(sys.argv[1]), float(sys.argv[2])
baseline_kb = high_water_kb()
started = time.monotonic()
{prepare}
seconds = time.monotonic() - started
self_kb = high_water_kb()
children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({{
    "outcome": outcome,
    "seconds": round(seconds, 3),
    "baseline_rss_mb": round(baseline_kb / 1024, 1),
    "worker_peak_rss_mb": round(self_kb / 1024, 1),
    "ffmpeg_peak_rss_mb": round(children_kb / 1024, 1),
    "peak_rss_sum_mb": round((self_kb + children_kb) / 1024, 1),
}}))
"""

PREPARE: dict[str, tuple[str, str]] = {
    "audio": (
        "import scipy.signal, pyloudnorm\n"
        "from modal_service.media.audio import prepare_track\n"
        "from modal_service.media.errors import MediaError",
        "try:\n"
        "    prepare_track(path, 'input', max_s=max_s)\n"
        "    outcome = 'accepted'\n"
        "except MediaError as exc:\n"
        "    outcome = exc.code",
    ),
    "image": (
        "from modal_service.media.image import load_portrait\n"
        "from modal_service.media.errors import MediaError",
        "try:\n"
        "    load_portrait(path, 'input')\n"
        "    outcome = 'accepted'\n"
        "except MediaError as exc:\n"
        "    outcome = exc.code",
    ),
}
"""Per kind: the imports, and the statement that prepares ``path`` and sets ``outcome``."""


def _corpus(name: str) -> Callable[[], bytes]:
    def build() -> bytes:
        from scripts.corpus.audio import audio_cases

        return next(case.data for case in audio_cases() if case.name == name)

    return build


def _speech_wav(seconds: float) -> Callable[[], bytes]:
    def build() -> bytes:
        import numpy as np

        from scripts.corpus.audio import fmt_chunk, pcm16, voice, wav

        ten = pcm16(voice(10.0, 16_000, seed=5))
        samples = np.tile(ten, int(seconds // 10))
        return wav(fmt_chunk(1, 1, 16_000, 16), samples.tobytes())

    return build


def _image_corpus(name: str) -> Callable[[], bytes]:
    def build() -> bytes:
        from scripts.corpus.images import image_cases

        return next(case.data for case in image_cases() if case.name == name)

    return build


def _largest_image() -> bytes:
    """The most memory an accepted portrait costs: 64 MP (the cap) of half-transparent RGBA."""
    from modal_service.image_rules import MAX_IMAGE_PIXELS
    from scripts.corpus.images import flat_png

    width = 8000
    return flat_png(width, MAX_IMAGE_PIXELS // width, 8, 6, bytes([10, 20, 30, 128]) * width)


INPUTS: list[tuple[str, Callable[[], bytes]]] = [
    ("audio/flac-10h-silence-bomb", _corpus("flac-10h-silence-bomb")),
    ("audio/flac-claims-10h-holds-2s", _corpus("flac-claims-10h-holds-2s")),
    ("audio/flac-10h-silence-no-length", _corpus("flac-10h-silence-no-length")),
    ("audio/mp3-11min-8kbps", _corpus("mp3-11min-8kbps")),
    ("audio/normal-15s-wav", _speech_wav(15.0)),
    ("audio/normal-600s-wav", _speech_wav(600.0)),
    ("image/png-header-100000x100000", _image_corpus("png-header-100000x100000")),
    ("image/png-1bit-20000x20000-flat", _image_corpus("png-1bit-20000x20000-flat")),
    ("image/jpeg-sof-65500x65500", _image_corpus("jpeg-sof-65500x65500")),
    ("image/gif-screen-65535x65535", _image_corpus("gif-screen-65535x65535")),
    ("image/webp-canvas-16383x16383", _image_corpus("webp-canvas-16383x16383")),
    ("image/jpeg-progressive-300-scans", _image_corpus("jpeg-progressive-300-scans")),
    ("image/png-8200x8000-flat", _image_corpus("png-8200x8000-flat")),
    ("image/png-header-7000x7000-no-data", _image_corpus("png-header-7000x7000-no-data")),
    ("image/normal-portrait-jpeg", _image_corpus("jpeg-baseline")),
    ("image/largest-accepted-64mp-rgba-png", _largest_image),
]


def measure(kind: str, data: bytes, max_s: float = MAX_AUDIO_S) -> dict[str, Any]:
    """Prepare ``data`` as a ``kind`` input in a fresh process; its outcome, time and peaks."""
    imports, prepare = PREPARE[kind]
    snippet = _MEASURE.format(imports=imports, prepare=prepare)
    with tempfile.TemporaryDirectory(prefix="bench-bombs-") as work:
        path = Path(work) / "input"
        path.write_bytes(data)
        completed = subprocess.run(
            [sys.executable, "-c", snippet, str(path), str(max_s)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["file_kb"] = round(len(data) / 1024, 1)
    return figures


def main() -> None:
    figures = {}
    for name, build in INPUTS:
        figures[name] = measure(name.split("/", 1)[0], build())
    save(
        "input_bombs",
        {"max_audio_s": MAX_AUDIO_S, "inputs": figures},
        "python -m scripts.bench.input_bombs",
    )


if __name__ == "__main__":
    main()
