"""The media half of a render: decode, check and normalise the inputs; no model needed.

The worker runs this before it asks for the model, so a bad file is refused within a second or
two and never waits for, or holds, a loaded model. Importing it loads no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from modal_service.media.audio import (
    MODEL_SAMPLE_RATE,
    MUX_SAMPLE_RATE,
    arrange_speakers,
    prepare_track,
)
from modal_service.media.errors import AudioError, ImageError, VideoError
from modal_service.media.image import load_portrait
from modal_service.media.source_video import PreparedVideo, prepare_source_video
from modal_service.media.video import VIDEO_FPS
from modal_service.multitalk.errors import InputRejectedError
from modal_service.multitalk.spec import RenderSpec

MUX_PEAK_CEILING = 0.98  # about -0.2 dBFS: headroom for the AAC encoder's overshoot


@dataclass
class PreparedInputs:
    """What the model and the MP4 need from the caller's files."""

    model_tracks: list[np.ndarray]
    """Per speaker, 16 kHz mono at -23 LUFS, laid on the shared timeline (uncut)."""
    frames: int
    """Video frames to render: the timeline, cut to ``max_duration_s``."""
    soundtrack: Path
    """The MP4's audio (48 kHz float WAV), cut like the video."""
    durations_s: list[float]
    """Each input track's own duration."""
    notes: list[str]
    portrait: Image.Image
    """RGB, upright, alpha composited; for a source video, its first frame."""
    video: PreparedVideo | None = None
    """The source video to dub, checked, with a streaming reader of its frames."""


def prepare_inputs(spec: RenderSpec, workdir: Path) -> PreparedInputs:
    """Read, check and normalise every input of ``spec``; the soundtrack goes in ``workdir``.

    Raises:
        InputRejectedError: an input is refused, with its code and a message naming it.
    """
    tracks = []
    for index, path in enumerate(spec.audio_paths):
        try:
            tracks.append(prepare_track(path, spec.audio_label(index), max_s=spec.max_audio_s))
        except AudioError as exc:
            raise InputRejectedError(exc.code, exc.message) from None
    video = None
    try:
        if spec.video_path is not None:
            video = prepare_source_video(
                spec.video_path,
                spec.video_label,
                max_s=spec.max_video_s,
                max_bytes=spec.max_video_bytes,
            )
            portrait = video.first_frame
        else:
            portrait = load_portrait(spec.image_path, spec.image_label)
    except (ImageError, VideoError) as exc:
        raise InputRejectedError(exc.code, exc.message) from None

    model_tracks = arrange_speakers([t.model_samples for t in tracks], spec.audio_type)
    mux_tracks = arrange_speakers([t.mux_samples for t in tracks], spec.audio_type)
    timeline_s = model_tracks[0].size / MODEL_SAMPLE_RATE
    notes = []
    if timeline_s > spec.max_duration_s + 0.5 / VIDEO_FPS:
        notes.append(
            f"the audio lasts {timeline_s:.2f} s, longer than video_length "
            f"({spec.max_duration_s:g} s): the video and its soundtrack stop at "
            f"{spec.max_duration_s:g} s"
        )
    frames = int(min(timeline_s, spec.max_duration_s) * VIDEO_FPS)
    # One speaker's track is the mix as it is: no copy of a 115 MB (10-minute) array is made
    # unless two tracks must be added or the mix scaled.
    mix = mux_tracks[0] if len(mux_tracks) == 1 else np.add(*mux_tracks)
    mix = mix[: math.ceil(frames / VIDEO_FPS * MUX_SAMPLE_RATE)]
    # Each track's gain stops at its own peak; two speakers together (para) can still add up
    # past full scale, so the mix is brought under the ceiling rather than clipped.
    peak = max(float(mix.max()), -float(mix.min())) if mix.size else 0.0
    if peak > MUX_PEAK_CEILING:
        mix = mix * np.float32(MUX_PEAK_CEILING / peak)
    soundtrack = workdir / "soundtrack.wav"
    soundfile.write(
        soundtrack, mix.astype(np.float32, copy=False), MUX_SAMPLE_RATE, subtype="FLOAT"
    )
    return PreparedInputs(
        model_tracks=model_tracks,
        frames=frames,
        soundtrack=soundtrack,
        durations_s=[round(t.duration_s, 3) for t in tracks],
        notes=notes,
        portrait=portrait,
        video=video,
    )
