"""The worker's audio preparation, point by point (``test_audio_corpus.py`` runs the corpus)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from modal_service import audio_rules
from modal_service.audio_rules import BOMB_BYTES_PER_MINUTE, DURATION_SLACK_S
from modal_service.media import audio, audio_header
from modal_service.media.audio import (
    MODEL_SAMPLE_RATE,
    MUX_SAMPLE_RATE,
    arrange_speakers,
    integrated_loudness,
    loudness_gain,
    prepare_track,
)
from modal_service.media.audio_header import probe_audio
from modal_service.media.errors import AudioError
from modal_service.media.ffmpeg import ffmpeg_exe
from scripts.corpus.audio import constant_flac, fmt_chunk, on_channel, pcm16, voice, wav
from tests.unit.media.conftest import draw_portrait, write_tone

NAME = "audio 1 (voice.wav)"
RATE = 16_000


def speech_wav(path: Path, seconds: float, *, level: float = 0.3, seed: int = 1) -> Path:
    path.write_bytes(
        wav(fmt_chunk(1, 1, RATE, 16), pcm16(voice(seconds, RATE, seed, level)).tobytes())
    )
    return path


def ffmpeg(*args: str) -> bytes:
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(command, capture_output=True, check=True)
    return done.stdout


def refused(path: Path, max_s: float = 15.0) -> AudioError:
    with pytest.raises(AudioError) as caught:
        prepare_track(path, NAME, max_s=max_s)
    return caught.value


def lufs(samples: np.ndarray, rate: int) -> float:
    return pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))


# ------------------------------------------------------------------------------ accepting


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".m4a", ".ogg"])
def test_common_formats_prepare_to_mono_at_both_rates(tmp_path: Path, suffix: str) -> None:
    track = prepare_track(write_tone(tmp_path / f"voice{suffix}", seconds=1.5), NAME, max_s=15)
    for samples in (track.model_samples, track.mux_samples):
        assert samples.dtype == np.float32
        assert samples.ndim == 1
    # Lossy codecs add priming/padding: within 0.05 s of the source length.
    assert track.duration_s == pytest.approx(1.5, abs=0.05)
    assert track.duration_s == track.mux_samples.size / MUX_SAMPLE_RATE
    assert track.model_samples.size == pytest.approx(track.mux_samples.size / 3, abs=1)
    # One gain for both: the model and the soundtrack hear the same level.
    assert lufs(track.model_samples, MODEL_SAMPLE_RATE) == pytest.approx(-23.0, abs=0.1)
    assert lufs(track.mux_samples, MUX_SAMPLE_RATE) == pytest.approx(-23.0, abs=0.3)


def test_the_extension_is_never_consulted(tmp_path: Path) -> None:
    m4a = write_tone(tmp_path / "voice.m4a", seconds=1.5)
    disguised = tmp_path / "voice.wav"
    m4a.rename(disguised)
    track = prepare_track(disguised, NAME, max_s=15)
    assert track.info.codec == "aac"
    assert track.info.format == "m4a"


def test_a_track_longer_than_the_video_is_taken_whole(tmp_path: Path) -> None:
    track = prepare_track(speech_wav(tmp_path / "long.wav", 4.0), NAME, max_s=15)
    assert track.duration_s == pytest.approx(4.0)


def test_quiet_speech_is_not_silence(tmp_path: Path) -> None:
    # About -60 LUFS: a whisper far from the microphone, still above BS.1770's -70 LUFS gate.
    path = speech_wav(tmp_path / "quiet.wav", 1.5, level=0.3 * 10 ** (-38 / 20))
    track = prepare_track(path, NAME, max_s=15)
    assert lufs(track.model_samples, MODEL_SAMPLE_RATE) == pytest.approx(-23.0, abs=0.1)


def test_the_gain_never_clips_the_soundtrack(tmp_path: Path) -> None:
    # Sparse clicks over a faint voice: -23 LUFS would push the clicks far beyond full scale.
    samples = voice(2.0, RATE, seed=3, level=0.01)
    samples[:: RATE // 5] = 0.9
    path = tmp_path / "clicks.wav"
    path.write_bytes(wav(fmt_chunk(3, 1, RATE, 32), samples.astype("<f4").tobytes()))
    track = prepare_track(path, NAME, max_s=15)
    assert np.abs(track.mux_samples).max() <= 1.0
    assert np.abs(track.mux_samples).max() > 0.99  # limited by the peak, not by clipping
    assert lufs(track.model_samples, MODEL_SAMPLE_RATE) < -23.0


# ----------------------------------------------------------------------------- the header


def test_probe_reads_the_header(tmp_path: Path) -> None:
    frames = np.repeat(pcm16(voice(2.0, 44_100, seed=2))[:, None], 2, axis=1)
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav(fmt_chunk(1, 2, 44_100, 16), frames.tobytes()))
    info = probe_audio(path, NAME)
    assert (info.format, info.container, info.codec) == ("wav", "wav", "pcm_s16le")
    assert (info.sample_rate, info.channels, info.channel_layout) == (44_100, 2, "stereo")
    assert info.duration_s == pytest.approx(2.0)
    assert not info.has_video
    assert info.size_bytes == path.stat().st_size


def test_lengths_the_header_only_guesses_are_unknown(tmp_path: Path) -> None:
    # ADTS has no length (ffmpeg estimates one from the bitrate); a live WebM has none at all.
    source = speech_wav(tmp_path / "s.wav", 1.5)
    adts, webm = tmp_path / "a.aac", tmp_path / "a.webm"
    ffmpeg("-i", str(source), "-c:a", "aac", "-f", "adts", str(adts))
    webm.write_bytes(ffmpeg("-i", str(source), "-c:a", "libopus", "-f", "webm", "pipe:1"))
    assert probe_audio(adts, NAME).duration_s is None
    assert probe_audio(webm, NAME).duration_s is None


HEADER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/tmp/x/input':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 119 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 64x48, 10 fps
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, {layout}, fltp, 64 kb/s
  Stream #0:2[0x3](eng): Audio: ac3, 44100 Hz, mono, fltp, 64 kb/s
"""


@pytest.mark.parametrize(
    ("layout", "channels"),
    [
        ("mono", 1),
        ("stereo", 2),
        ("5.1(side)", 6),
        ("7.1.4", 12),
        ("hexadecagonal", 16),
        ("22.2", 24),
        ("30 channels", 30),
        ("6 channels (FL+FR+FC+LFE+BL+BR)", 6),
        ("ambisonic 1", 4),
        ("some future name", 0),
    ],
)
def test_channel_layouts_are_counted(layout: str, channels: int) -> None:
    info = audio_header._parse_header(HEADER.format(layout=layout), sniffed="mp4", size=1)
    assert info is not None
    assert info.channels == channels
    # The first audio stream is taken, whatever comes before it; the length is the container's.
    assert (info.codec, info.sample_rate, info.duration_s) == ("aac", 48_000, 62.5)
    assert info.has_video


def test_cover_art_is_not_a_video_track() -> None:
    header = HEADER.replace("yuv420p, 64x48, 10 fps", "64x64 (attached pic)").format(layout="mono")
    info = audio_header._parse_header(header, sniffed="mp4", size=1)
    assert info is not None
    assert not info.has_video


def test_an_unreadable_header_is_none() -> None:
    assert audio_header._parse_header("x: Invalid data found", sniffed="mp3", size=1) is None


# ------------------------------------------------------------------------------ downmix


@pytest.mark.parametrize(("channels", "speaking"), [(2, 1), (6, 3), (16, 15), (24, 0)])
def test_every_channel_counts_in_the_downmix(tmp_path: Path, channels: int, speaking: int) -> None:
    # Right only; LFE only (ffmpeg's -ac 1 drops LFE); the last of 16 and the first of 24
    # (layouts ffmpeg cannot downmix itself).
    frames = on_channel(pcm16(voice(1.2, 8_000, seed=4)), channels, speaking)
    path = tmp_path / "many.wav"
    path.write_bytes(wav(fmt_chunk(1, channels, 8_000, 16, extensible=True), frames.tobytes()))
    track = prepare_track(path, NAME, max_s=15)
    assert track.info.channels == channels
    assert lufs(track.model_samples, MODEL_SAMPLE_RATE) == pytest.approx(-23.0, abs=0.1)


def test_an_uncounted_layout_uses_ffmpegs_downmix(tmp_path: Path) -> None:
    path = speech_wav(tmp_path / "v.wav", 1.5)
    info = probe_audio(path, NAME).model_copy(update={"channels": 0})
    samples, capped = audio._decode(path, info, NAME, 16.0)
    assert samples.size == 72_000
    assert not capped


def test_a_failed_downmix_is_retried_with_ffmpegs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = speech_wav(tmp_path / "v.wav", 1.5)
    info = probe_audio(path, NAME).model_copy(update={"channels": 2})
    real, calls = audio._run_decoder, []

    def first_fails(path: Path, downmix: str | None, name: str, cap_s: float) -> tuple:
        calls.append(downmix)
        if len(calls) == 1:
            return np.zeros(0, np.float32), False, 1
        return real(path, downmix, name, cap_s)

    monkeypatch.setattr(audio, "_run_decoder", first_fails)
    samples, _ = audio._decode(path, info, NAME, 16.0)
    assert samples.size == 72_000
    assert calls[0] == "pan=mono|c0=0.500000000*c0+0.500000000*c1"
    assert calls[1] is None


# ------------------------------------------------------------------------ length and bombs


def test_the_maximum_forgives_codec_padding_only(tmp_path: Path) -> None:
    assert prepare_track(speech_wav(tmp_path / "a.wav", 2.2), NAME, max_s=2.0).duration_s == 2.2
    assert DURATION_SLACK_S > 2.2 - 2.0  # padding-sized overshoots pass
    assert refused(speech_wav(tmp_path / "b.wav", 2.5), max_s=2.0).code == "audio_too_long"


def test_a_claimed_length_over_the_maximum_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("decoded a file its header already refused")

    monkeypatch.setattr(audio, "_run_decoder", never)
    error = refused(speech_wav(tmp_path / "a.wav", 3.0), max_s=2.0)
    assert error.code == "audio_too_long"
    assert error.message == f"{NAME} lasts 3.0 s; this deployment takes at most 2.0 s"
    bomb = tmp_path / "bomb.flac"
    bomb.write_bytes(constant_flac(40, claimed_samples=None))  # 5.5 min in 643 bytes
    assert refused(bomb, max_s=60.0).code == "decompression_bomb"


def test_without_a_length_the_decode_stops_at_the_cap(tmp_path: Path) -> None:
    # A WAV written to a pipe says nothing true about its length.
    source = speech_wav(tmp_path / "s.wav", 6.0)
    piped = tmp_path / "piped.wav"
    piped.write_bytes(ffmpeg("-i", str(source), "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"))
    samples, capped, _ = audio._run_decoder(piped, audio._downmix(1), NAME, 2.0)
    assert capped
    assert samples.size <= 2.0 * MUX_SAMPLE_RATE
    assert samples.size >= 1.98 * MUX_SAMPLE_RATE
    error = refused(piped, max_s=3.0)
    assert error.code == "audio_too_long"
    assert error.message == f"{NAME} lasts more than 3.0 s, the most this deployment takes"


def test_a_tiny_file_that_decodes_past_the_cap_is_a_bomb(tmp_path: Path) -> None:
    # 87 bytes, no length, 24.6 s of silence: past a 16 s cap it is far beyond the bomb ratio
    # (267 bytes would be the least for 16 s); under a 600 s maximum it is just silence.
    path = tmp_path / "tiny.flac"
    path.write_bytes(constant_flac(3, claimed_samples=0))
    assert path.stat().st_size < BOMB_BYTES_PER_MINUTE * 16 / 60
    assert refused(path, max_s=15.0).code == "decompression_bomb"
    assert refused(path, max_s=600.0).code == "audio_silent"


@pytest.mark.parametrize(
    ("size_bytes", "seconds", "bomb"),
    [
        (25_000, 25.0, False),  # MP3 at 8 kbit/s: 60 KB a minute
        (660_000, 660.0, False),
        (36_000 * 11, 660.0, False),  # AMR-NB's lowest mode, 4.75 kbit/s
        (64_000, 36_000.0, True),  # 10 h in 64 KB
        (9_999, 600.0, True),  # just under 1,000 bytes a minute
        (10_000, 600.0, False),
    ],
)
def test_the_bomb_ratio(size_bytes: int, seconds: float, bomb: bool) -> None:
    assert audio_rules.is_bomb(size_bytes, seconds) is bomb


def test_a_long_video_is_judged_by_its_audio(tmp_path: Path) -> None:
    # The container says 20 s (the picture's); the sound is 1.5 s and fits a 15 s maximum.
    source = speech_wav(tmp_path / "s.wav", 1.5)
    video = tmp_path / "v.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x32:r=1:d=20", "-i", str(source), "-map", "0:v",
           "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac", str(video))  # fmt: skip
    track = prepare_track(video, NAME, max_s=15.0)
    assert track.info.has_video
    assert track.info.duration_s == pytest.approx(20.0, abs=0.1)
    assert track.duration_s == pytest.approx(1.5, abs=0.05)


def test_a_decode_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "DECODE_TIMEOUT_S", 0.0)
    error = refused(speech_wav(tmp_path / "a.wav", 1.5))
    assert error.code == "audio_invalid"
    assert "could not be decoded" in error.message


# ------------------------------------------------------------------------------ refusals


def test_silence_and_dither_are_silent(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    silence = tmp_path / "silence.wav"
    silence.write_bytes(wav(fmt_chunk(1, 1, RATE, 16), bytes(RATE * 4)))
    dither = tmp_path / "dither.wav"
    lsb = rng.integers(0, 2, RATE * 2) - rng.integers(0, 2, RATE * 2)
    dither.write_bytes(wav(fmt_chunk(1, 1, RATE, 16), lsb.astype("<i2").tobytes()))
    for path in (silence, dither):
        error = refused(path)
        assert error.code == "audio_silent"
        assert error.message.startswith(NAME)


def test_non_finite_samples_are_invalid_not_silent(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    path.write_bytes(wav(fmt_chunk(3, 1, RATE, 32), np.full(RATE * 2, np.nan, "<f4").tobytes()))
    assert refused(path).code == "audio_invalid"


def test_short_tracks_are_too_short(tmp_path: Path) -> None:
    error = refused(speech_wav(tmp_path / "a.wav", 0.6))
    assert error.code == "audio_too_short"
    assert error.message == f"{NAME} lasts 0.60 s; at least 1 s is needed"


def test_an_image_is_unsupported_and_garbage_invalid(tmp_path: Path) -> None:
    image = refused(draw_portrait(tmp_path / "face.png"))
    assert image.code == "unsupported_format"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    assert refused(junk).code == "audio_invalid"
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert refused(empty).code == "audio_invalid"
    assert refused(tmp_path / "absent.wav").code == "audio_invalid"


def test_messages_name_the_input_never_the_file(tmp_path: Path) -> None:
    for path in (draw_portrait(tmp_path / "face.png"), speech_wav(tmp_path / "s.wav", 0.5)):
        error = refused(path)
        assert error.message.startswith(NAME)
        assert str(tmp_path) not in error.message
        assert path.name not in error.message


# ------------------------------------------------------------------------------- loudness


def test_loudness_gain_reaches_minus_23_lufs() -> None:
    samples = voice(3.0, RATE, seed=5, level=0.05).astype(np.float32)
    gain = loudness_gain(samples, RATE)
    assert gain > 1.0
    assert lufs(samples * gain, RATE) == pytest.approx(-23.0, abs=0.1)


def test_near_silence_is_left_alone() -> None:
    assert loudness_gain(np.full(32_000, 1e-9, np.float32), 16_000) == 1.0
    assert integrated_loudness(np.zeros(32_000, np.float32), 16_000) == -np.inf


def test_add_puts_speakers_one_after_the_other() -> None:
    a, b = np.ones(3, np.float32), np.full(2, 2.0, np.float32)
    first, second = arrange_speakers([a, b], "add")
    assert first.tolist() == [1, 1, 1, 0, 0]
    assert second.tolist() == [0, 0, 0, 2, 2]


def test_para_overlays_speakers_and_pads_the_shorter() -> None:
    a, b = np.ones(3, np.float32), np.full(2, 2.0, np.float32)
    first, second = arrange_speakers([a, b], "para")
    assert first.tolist() == [1, 1, 1]
    assert second.tolist() == [2, 2, 0]
    assert arrange_speakers([a], "para")[0] is a


@pytest.mark.parametrize(
    ("rate", "seconds"),
    [(16_000, 0.4), (16_000, 3.0077), (44_100, 2.0004), (48_000, 61.3)],
    ids=["one-block", "odd-length", "44k1", "longer-than-a-filter-chunk"],
)
def test_loudness_in_bounded_memory_is_pyloudnorms_measurement(rate: int, seconds: float) -> None:
    rng = np.random.default_rng(int(seconds * 1000))
    size = round(rate * seconds)
    samples = (rng.standard_normal(size) * np.linspace(0.001, 0.3, size)).astype(np.float32)
    samples[: size // 3] *= 1e-4  # quiet blocks the gates must drop
    assert integrated_loudness(samples, rate) == pytest.approx(lufs(samples, rate), abs=1e-9)
    assert (
        integrated_loudness(np.zeros(rate, np.float32), rate)
        == -np.inf
        == lufs(np.zeros(rate, np.float32), rate)
    )
