"""The source video reader: upright, centre-cropped like a portrait, looped or cut to the audio,
read in order in flat memory. Real files from the corpus and the real bundled ffmpeg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modal_service.media.errors import VideoError
from modal_service.media.ffmpeg import run_ffmpeg
from modal_service.media.source_video import PreparedVideo, prepare_source_video
from scripts.corpus.video import QUADRANT_COLOURS, quadrants, video_cases

CASES = {case.name: case for case in video_cases()}
ROOT = Path(__file__).resolve().parents[3]


def prepared(tmp_path: Path, name: str) -> PreparedVideo:
    path = tmp_path / name
    path.write_bytes(CASES[name].data)
    return prepare_source_video(path, f"the source video ({CASES[name].key})", max_s=3.0)


def test_a_rotated_phone_video_comes_out_upright(tmp_path: Path) -> None:
    video = prepared(tmp_path, "mp4-phone-portrait-rotated")
    assert (video.info.coded_width, video.info.coded_height) == (96, 64)
    assert (video.info.width, video.info.height, video.info.rotation) == (64, 96, 90)
    # Stored landscape, turned 90 degrees clockwise for display: what was on the left is on top.
    upright = np.rot90(quadrants(96, 64), k=-1)
    with video.frames(96, 64) as reader:
        frame = reader.frame_at(0)
    assert np.abs(frame.astype(int) - upright).mean() < 4
    red, green, blue, white = QUADRANT_COLOURS
    corners = [frame[10, 10], frame[10, 53], frame[85, 10], frame[85, 53]]
    for found, expected in zip(corners, [blue, red, white, green], strict=True):
        assert np.abs(found.astype(int) - expected).max() < 12
    assert np.array_equal(np.asarray(video.first_frame), frame)


def test_frames_are_cropped_like_a_portrait(tmp_path: Path) -> None:
    from modal_service.multitalk.buckets import resize_and_crop  # imports torch: only here

    video = prepared(tmp_path, "mp4-phone-portrait-rotated")
    with video.frames(30, 40) as reader:
        frame = reader.frame_at(0)
    expected = np.asarray(resize_and_crop(video.first_frame, 30, 40))
    assert frame.shape == expected.shape == (30, 40, 3)
    # The colour boundary sits mid-frame in both: a crop from the top would move it by 15 rows.
    assert np.abs(frame.astype(int) - expected).mean() < 4


def test_a_longer_audio_restarts_the_source_and_overlapping_clips_agree(tmp_path: Path) -> None:
    video = prepared(tmp_path, "mkv-h264")  # 1.6 s: 40 frames at 25 fps
    with video.frames(32, 32) as reader:
        first = reader.clip(0, 81)
        second = reader.clip(72, 81)
        assert reader.source_length == 40
    assert np.array_equal(first[72:], second[:9])
    timeline = np.concatenate([first, second[9:]])  # frames 0 .. 152
    for index in range(40, 153):
        assert np.array_equal(timeline[index], timeline[index - 40]), index
    # A restart, not a ping-pong: after the last frame comes the first, not the one before.
    assert not np.array_equal(timeline[40], timeline[38])
    assert not np.array_equal(timeline[39], timeline[40])


def test_a_jump_forward_serves_the_same_frame_as_reading_up_to_it(tmp_path: Path) -> None:
    video = prepared(tmp_path, "webm-vp9")  # 30 frames
    with video.frames(32, 32) as reader:
        in_order = reader.clip(0, 100)
    with video.frames(32, 32) as reader:
        assert np.array_equal(reader.frame_at(97), in_order[97])


def test_requests_may_not_go_back_past_the_last_start(tmp_path: Path) -> None:
    video = prepared(tmp_path, "mkv-h264")
    with video.frames(32, 32) as reader:
        reader.clip(10, 5)
        reader.frame_at(10)  # the same start again is fine
        with pytest.raises(ValueError, match="in order"):
            reader.frame_at(9)


def _children() -> set[int]:
    mine = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                mine.add(int(entry.name))
    return mine


def test_a_shorter_audio_cuts_the_source_and_stops_the_decoder(tmp_path: Path) -> None:
    video = prepared(tmp_path, "mp4-h264-aac-30fps")  # 50 frames
    before = _children()
    reader = video.frames(32, 32)
    reader.clip(0, 10)
    assert _children() - before  # ffmpeg is running, ahead of us by what the pipe holds
    reader.close()
    assert _children() == before
    assert reader.source_length is None  # never read to the end


def test_limits_from_the_deployment(tmp_path: Path) -> None:
    path = tmp_path / "talk.mp4"
    path.write_bytes(CASES["mp4-h264-aac-30fps"].data)
    with pytest.raises(VideoError) as caught:
        prepare_source_video(path, "the source video (talk.mp4)", max_bytes=10_000)
    assert caught.value.code == "video_too_large"
    assert caught.value.message.startswith("the source video (talk.mp4) is 37 KB;")
    with pytest.raises(VideoError) as caught:
        prepare_source_video(path, "the source video (talk.mp4)", max_s=1.0)
    assert caught.value.code == "video_too_long"


# Runs in a fresh interpreter: decode a whole source the way the renderer reads it (81-frame
# clips every 72 frames) at 256x256, and report the peak RSS of this process and of its ffmpeg
# (read from /proc while it runs: a forked child's own rusage counts the parent's pages).
_MEASURE = """
import json, os, sys
from pathlib import Path
from modal_service.media.source_video import prepare_source_video

def hwm(status):
    return next(int(line.split()[1]) for line in status.read_text().splitlines()
                if line.startswith("VmHWM"))

video = prepare_source_video(sys.argv[1], "the source video", max_s=600)
total, ffmpeg = 0, 0
with video.frames(256, 256) as reader:
    for start in range(0, video.frame_count, 72):
        total += len(reader.clip(start, 81))
        for entry in Path("/proc").iterdir():
            stat = entry / "stat"
            if entry.name.isdigit() and stat.exists():
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    ffmpeg = max(ffmpeg, hwm(entry / "status"))
print(json.dumps({"frames": total, "python_kb": hwm(Path("/proc/self/status")),
                  "ffmpeg_kb": ffmpeg}))
"""


@pytest.mark.slow
def test_a_long_source_decodes_in_flat_memory(tmp_path: Path, record_property: Any) -> None:
    short = tmp_path / "10s.mp4"
    pattern = ["-f", "lavfi", "-i", "testsrc2=size=64x96:rate=25:d=10"]
    made = run_ffmpeg([*pattern, "-c:v", "libx264", "-preset", "ultrafast", str(short)])
    assert made.returncode == 0
    long = tmp_path / "60s.mp4"
    made = run_ffmpeg(["-stream_loop", "5", "-i", str(short), "-c", "copy", str(long)])
    assert made.returncode == 0
    figures = {}
    for path in (short, long):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path)],
            capture_output=True, text=True, cwd=ROOT, check=True, timeout=300,
        )  # fmt: skip
        figures[path.stem] = json.loads(done.stdout)
    record_property("source_video_memory", figures)
    # 60 s at 256x256 is 1,500 frames, 295 MB if they were all held; one clip is 16 MB.
    assert figures["60s"]["frames"] >= 1500
    for key in ("python_kb", "ffmpeg_kb"):
        assert figures["60s"][key] <= 1.2 * figures["10s"][key], (key, figures)
