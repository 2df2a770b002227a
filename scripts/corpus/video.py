"""Source videos (dubbing) as people send them, and the bad ones, with what the worker must make
of each.

Every file is a few kilobytes, built here by the bundled ffmpeg (``-fflags +bitexact``, one
encoder thread, no metadata) from its ``testsrc2`` pattern, whose picture changes every frame, or
from :func:`quadrants`, whose four colours show which way up a frame came out. The same bytes
come out on every machine with the same ffmpeg; :func:`video_cases` builds them once a process.

Expectations hold for a deployment maximum of :data:`CORPUS_MAX_S`. Accepted cases carry the
upright ``size`` (width, height), the ``rotation`` the header states, and ``frames``: how many
frames the source makes at 25 fps (for a truncated file, at most that many). Every case runs
through the worker's preparation in the unit tests (``tests/unit/media/test_video_corpus.py``);
the refusals the submit path sees from the first bytes also go through the public API
(``tests/integration/lambda_proxy/test_api_video.py``). The reliability suite does not send them
yet: no worker renders a video on the local stack until the GPU side takes one.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modal_service.media.ffmpeg import ffmpeg_exe
from scripts.corpus import ACCEPT, CorpusCase
from scripts.corpus.audio import BITEXACT, NO_METADATA, fmt_chunk, pcm16, stored_png, voice, wav

CORPUS_MAX_S = 3.0
"""The deployment maximum the expectations are written for (every accepted file is shorter)."""

QUADRANT_COLOURS = ((230, 40, 40), (40, 200, 60), (40, 70, 220), (235, 235, 235))
"""Top left red, top right green, bottom left blue, bottom right white, as stored."""

_X264 = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-threads", "1")
_AV1 = ("-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-threads", "1")


def quadrants(width: int, height: int) -> np.ndarray:
    """A ``(height, width, 3)`` frame in four flat colours (:data:`QUADRANT_COLOURS`)."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    half_h, half_w = height // 2, width // 2
    for (rows, cols), colour in zip(
        (
            (slice(0, half_h), slice(0, half_w)),
            (slice(0, half_h), slice(half_w, None)),
            (slice(half_h, None), slice(0, half_w)),
            (slice(half_h, None), slice(half_w, None)),
        ),
        QUADRANT_COLOURS,
        strict=True,
    ):
        frame[rows, cols] = colour
    return frame


class _Encoder:
    """Runs the bundled ffmpeg into files under one temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def run(self, args: Sequence[str], suffix: str, stdin: bytes | None = None) -> bytes:
        """ffmpeg ``args`` into a new file with ``suffix`` (``.pipe``: into its stdout)."""
        self.count += 1
        out = self.folder / f"{self.count}{suffix}"
        command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
        command += [*BITEXACT, *NO_METADATA]
        command.append("pipe:1" if suffix == ".pipe" else str(out))
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"corpus: ffmpeg {args} failed: {done.stderr.decode()[-600:]}")
        return done.stdout if suffix == ".pipe" else out.read_bytes()

    def pattern(
        self,
        seconds: float,
        fps: float,
        codec: Sequence[str],
        suffix: str,
        size: tuple[int, int] = (64, 96),
        extra: Sequence[str] = (),
        sound: bool = False,
    ) -> bytes:
        """``testsrc2`` at ``size`` (width, height), optionally with a voice-like track."""
        width, height = size
        source = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:d={seconds}"]
        if sound:
            source += ["-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:d={seconds}"]
        return self.run([*source, *extra, *codec], suffix)

    def still(self, frame: np.ndarray, seconds: float, fps: float, args: Sequence[str]) -> bytes:
        """``frame`` repeated for ``seconds``, encoded by ``args`` (which end with the suffix)."""
        count = round(seconds * fps)
        height, width = frame.shape[:2]
        source = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
        source += ["-r", f"{fps:g}", "-i", "pipe:0"]
        return self.run([*source, *args[:-1]], args[-1], stdin=frame.tobytes() * count)

    def remux(self, data: bytes, suffix: str, before: Sequence[str], after: Sequence[str]) -> bytes:
        """``data`` copied into a new container: ``before`` are input options, ``after`` output."""
        source = self.folder / f"remux{self.count}{suffix}"
        source.write_bytes(data)
        return self.run([*before, "-i", str(source), "-c", "copy", *after], suffix)


def _accept(
    name: str,
    data: bytes,
    key: str,
    content_type: str,
    why: str,
    *,
    size: tuple[int, int],
    frames: int,
    rotation: int = 0,
) -> CorpusCase:
    expected = {"size": size, "frames": frames, "rotation": rotation}
    return CorpusCase(name, "video", data, key, content_type, ACCEPT, expected, why)


def _refuse(name: str, data: bytes, key: str, content_type: str, code: str, why: str) -> CorpusCase:
    return CorpusCase(name, "video", data, key, content_type, code, {}, why)


@functools.cache
def video_cases() -> list[CorpusCase]:
    """Every video case, built once per process (about 400 KB, a few seconds on 2 cores)."""
    with tempfile.TemporaryDirectory(prefix="video-corpus-") as folder:
        encoder = _Encoder(Path(folder))
        cases = [*_accepted(encoder), *_refused(encoder)]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


def _accepted(enc: _Encoder) -> list[CorpusCase]:
    mp4 = ["-pix_fmt", "yuv420p", *_X264, "-c:a", "aac", "-shortest"]
    faststart = enc.pattern(2.0, 25, [*mp4, "-movflags", "+faststart"], ".mp4")
    portrait = (64, 96)
    return [
        _accept(
            "mp4-h264-aac-30fps",
            enc.pattern(2.0, 30, mp4, ".mp4", sound=True),
            "talk.mp4",
            "video/mp4",
            "the common case: a 30 fps phone or webcam clip with its own sound",
            size=portrait,
            frames=50,
        ),
        _accept(
            "mov-h264-24fps",
            enc.pattern(2.0, 24, [*_X264, "-pix_fmt", "yuv420p", "-f", "mov"], ".mov"),
            "IMG_0042.MOV",
            "video/quicktime",
            "QuickTime (brand qt, a wide box before mdat); 24 fps film rate resampled up",
            size=portrait,
            frames=50,
        ),
        _accept(
            "webm-vp9",
            enc.pattern(1.2, 25, ["-c:v", "libvpx-vp9", "-deadline", "realtime"], ".webm"),
            "clip.webm",
            "video/webm",
            "WebM, VP9",
            size=portrait,
            frames=30,
        ),
        _accept(
            "webm-vp8-opus-piped",
            enc.pattern(
                1.0,
                25,
                ["-c:v", "libvpx", "-threads", "1", "-c:a", "libopus", "-f", "webm"],
                ".pipe",
                sound=True,
            ),
            "recording",
            "video/webm;codecs=vp8,opus",
            "what a browser's MediaRecorder uploads: no Duration in the header, no extension",
            size=portrait,
            frames=25,
        ),
        _accept(
            "mkv-h264",
            enc.pattern(1.6, 25, [*_X264, "-pix_fmt", "yuv420p"], ".mkv"),
            "export.mkv",
            "video/x-matroska",
            "Matroska (DocType matroska, not webm)",
            size=portrait,
            frames=40,
        ),
        _accept(
            "mp4-phone-portrait-rotated",
            enc.remux(
                enc.still(quadrants(96, 64), 1.0, 30, [*_X264, "-pix_fmt", "yuv420p", ".mp4"]),
                ".mp4",
                ["-display_rotation:v:0", "-90"],
                [],
            ),
            "IMG_0043.mp4",
            "video/mp4",
            "a phone held upright: stored landscape, a display matrix turning it 90 degrees",
            size=portrait,
            frames=25,
            rotation=90,
        ),
        _accept(
            "mp4-faststart",
            faststart,
            "web.mp4",
            "video/mp4",
            "moov before mdat: the submit path reads the length from the first 4 KB",
            size=portrait,
            frames=50,
        ),
        _accept(
            "mp4-variable-frame-rate",
            enc.pattern(
                2.0,
                30,
                [*_X264, "-pix_fmt", "yuv420p", "-fps_mode", "vfr"],
                ".mp4",
                extra=["-vf", r"select=not(between(mod(n\,10)\,3\,6))"],
            ),
            "screen.mp4",
            "video/mp4",
            "variable frame rate (4 frames in 10 dropped, timestamps kept): still 2 s",
            size=portrait,
            frames=50,
        ),
        _accept(
            "mp4-av1",
            enc.pattern(1.0, 25, _AV1, ".mp4"),
            "av1.mp4",
            "video/mp4",
            "AV1: the codec is the decoder's business, never the sniffer's",
            size=portrait,
            frames=25,
        ),
        _accept(
            "mp4-anamorphic",
            enc.pattern(1.0, 25, mp4, ".mp4", extra=["-vf", "setsar=2"]),
            "dv.mp4",
            "video/mp4",
            "non-square pixels (SAR 2:1): judged and cropped at the displayed 128x96",
            size=(128, 96),
            frames=25,
        ),
        _accept(
            "mp4-faststart-truncated",
            faststart[: len(faststart) * 6 // 10],
            "cut.mp4",
            "video/mp4",
            "an upload cut short after the header: what decodes is used, like audio",
            size=portrait,
            frames=50,
        ),
    ]


def _refused(enc: _Encoder) -> list[CorpusCase]:
    mp4 = [*_X264, "-pix_fmt", "yuv420p"]
    at_end = enc.pattern(1.0, 25, mp4, ".mp4")
    speech = pcm16(voice(0.5, 16_000, seed=3)).tobytes()
    sine = ["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:d=1"]
    return [
        _refuse("empty", b"", "empty.mp4", "video/mp4", "video_invalid", "zero bytes"),
        _refuse(
            "png-renamed-mp4",
            stored_png(64, 64, seed=5),
            "frame.mp4",
            "video/mp4",
            "unsupported_format",
            "a still picture: the portrait field takes it, not this one",
        ),
        _refuse(
            "wav-renamed-mp4",
            wav(fmt_chunk(1, 1, 16_000, 16), speech),
            "voice.mp4",
            "video/mp4",
            "unsupported_format",
            "the audio, sent as the video by mistake",
        ),
        _refuse(
            "m4a-audio",
            enc.run([*sine, "-c:a", "aac", "-f", "ipod"], ".m4a"),
            "voice.m4a",
            "audio/mp4",
            "unsupported_format",
            "brand M4A: audio by its first bytes",
        ),
        _refuse(
            "mp4-audio-only",
            enc.run([*sine, "-c:a", "aac"], ".mp4"),
            "sound.mp4",
            "video/mp4",
            "video_invalid",
            "an MP4 (brand isom) with no picture: only the probe can tell",
        ),
        _refuse(
            "webm-voice-note",
            enc.run([*sine, "-c:a", "libopus"], ".webm"),
            "note.webm",
            "audio/webm",
            "video_invalid",
            "a browser voice note: WebM with sound only",
        ),
        _refuse(
            "avi-mjpeg",
            enc.pattern(0.4, 25, ["-c:v", "mjpeg", "-threads", "1"], ".avi"),
            "old.avi",
            "video/x-msvideo",
            "unsupported_format",
            "AVI: decodable, but not one of the four containers",
        ),
        _refuse(
            "gif-animated",
            enc.pattern(0.4, 10, [], ".gif"),
            "loop.gif",
            "image/gif",
            "unsupported_format",
            "an animated GIF is an image",
        ),
        _refuse(
            "pdf",
            b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
            "script.pdf",
            "application/pdf",
            "unsupported_format",
            "a document",
        ),
        _refuse(
            "mp4-truncated-before-moov",
            at_end[: len(at_end) // 2],
            "cut.mp4",
            "video/mp4",
            "video_invalid",
            "a phone-style MP4 (moov at the end) cut short: no header survives",
        ),
        _refuse(
            "ftyp-then-garbage",
            at_end[:32] + np.random.default_rng(7).bytes(2000),
            "broken.mp4",
            "video/mp4",
            "video_invalid",
            "an MP4 signature in front of random bytes",
        ),
        _refuse(
            "random-bytes",
            np.random.default_rng(8).bytes(4000),
            "blob",
            "application/octet-stream",
            "video_invalid",
            "nothing recognisable",
        ),
        _refuse(
            "too-small-48px",
            enc.pattern(0.4, 25, mp4, ".mp4", size=(48, 48)),
            "tiny.mp4",
            "video/mp4",
            "video_invalid",
            "48x48: no face to dub",
        ),
        _refuse(
            "strip-5-to-1",
            enc.pattern(0.4, 25, mp4, ".mp4", size=(320, 64)),
            "banner.mp4",
            "video/mp4",
            "video_invalid",
            "a 5:1 banner: beyond the model's widest frame",
        ),
        _refuse(
            "too-long",
            enc.pattern(4.0, 5, mp4, ".mp4"),
            "long.mp4",
            "video/mp4",
            "video_too_long",
            f"4 s at a {CORPUS_MAX_S:g} s maximum: the header decides, nothing is decoded",
        ),
        _refuse(
            "side-over-4096",
            enc.run(
                ["-f", "lavfi", "-i", "color=c=gray:size=4160x2160:rate=25:d=0.04", *mp4],
                ".mp4",
            ),
            "8k.mp4",
            "video/mp4",
            "video_too_large",
            "4160 px wide: past DCI 4K",
        ),
        _refuse(
            "high-speed-2048px-240fps",
            enc.run(
                ["-f", "lavfi", "-i", "color=c=gray:size=2048x2048:rate=240:d=0.0084", *mp4],
                ".mp4",
            ),
            "slowmo.mp4",
            "video/mp4",
            "video_too_large",
            "1007 megapixels a second to decode: twice 4K at 60 fps",
        ),
    ]
