"""Audio files as people send them, and the bad ones, each with what the worker must make of it.

Every file is built here from a seeded, speech-like signal (a wandering pitch with harmonics,
cut into syllables), either by the bundled ffmpeg (``-fflags +bitexact``, no metadata) or byte by
byte where the point is the header itself (WAV chunks, FLAC frames, ID3 tags). The same bytes
come out on every machine with the same ffmpeg; :func:`audio_cases` builds them once a process.

Expectations hold for a deployment maximum of :data:`CORPUS_MAX_S` (the local stack's): an
``audio_too_long`` case carries its true ``duration_s`` (every one is over 20 s), and a bomb its
claimed ``claimed_s``, so a test at another maximum can tell what changes. Accepted cases carry
the true ``duration_s`` (what was encoded; for a truncated file, what survives the cut) and
``channels`` (what the file holds before the downmix).
"""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modal_service.media.ffmpeg import ffmpeg_exe
from scripts.corpus import ACCEPT, CorpusCase

CORPUS_MAX_S = 15.0
"""The deployment maximum the expectations are written for (the local stack's)."""

BITEXACT = ("-fflags", "+bitexact", "-flags:a", "+bitexact", "-flags:v", "+bitexact")
NO_METADATA = ("-map_metadata", "-1", "-map_chapters", "-1")


# ------------------------------------------------------------------------------ signals


def voice(seconds: float, rate: int, seed: int, level: float = 0.3) -> np.ndarray:
    """Speech-like mono float64 in [-level, level]: harmonics of a wandering pitch, cut into
    syllables by a raised-sine envelope with short gaps (loudness measures it like speech)."""
    rng = np.random.default_rng(seed)
    count = round(seconds * rate)
    t = np.arange(count) / rate
    pitch = rng.uniform(100, 190) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.8, 2.0) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    top = max(1, min(12, int(0.45 * rate / pitch.max())))
    harmonics = sum(
        0.7**k * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, top + 1)
    )
    envelope = np.zeros(count)
    position = int(0.04 * rate)
    while position < count:
        length = int(rng.uniform(0.12, 0.3) * rate)
        span = min(length, count - position)
        shape = np.sin(np.pi * np.arange(span) / length) ** 2
        envelope[position : position + span] = shape * rng.uniform(0.6, 1.0)
        position += length + int(rng.uniform(0.04, 0.12) * rate)
    signal = harmonics * envelope
    return level * signal / np.abs(signal).max()


def pcm16(signal: np.ndarray) -> np.ndarray:
    """Quantise at once: integers are the same on every CPU, whatever its float rounding."""
    return np.round(np.clip(signal, -1, 1) * 32767).astype("<i2")


def on_channel(mono: np.ndarray, channels: int, index: int) -> np.ndarray:
    """``mono`` on channel ``index`` of ``channels``, the others digitally silent."""
    frames = np.zeros((mono.size, channels), dtype=mono.dtype)
    frames[:, index] = mono
    return frames


# ------------------------------------------------------------------------- byte builders


def chunk(tag: bytes, body: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length as the format requires."""
    pad = b"\x00" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body) if size is None else size) + body + pad


def fmt_chunk(tag: int, channels: int, rate: int, bits: int, *, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    body = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits
    )
    if extensible:
        # cbSize, valid bits, channel mask (front left/right), then the sub-format GUID.
        guid = struct.pack("<H", tag) + bytes.fromhex("000000001000800000aa00389b71")
        body += struct.pack("<HHI", 22, bits, (1 << channels) - 1) + guid
    elif tag != 1:
        body += struct.pack("<H", 0)
    return chunk(b"fmt ", body)


def wav(
    fmt: bytes,
    data: bytes,
    *,
    before_data: Sequence[bytes] = (),
    data_size: int | None = None,
    riff_size: int | None = None,
) -> bytes:
    body = b"WAVE" + fmt + b"".join(before_data) + chunk(b"data", data, data_size)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def stored_png(width: int, height: int, seed: int) -> bytes:
    """A noise PNG with stored (uncompressed) deflate blocks: the same bytes with any zlib."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def png_chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows, 0))
        + png_chunk(b"IEND", b"")
    )


def id3v2(frames: Sequence[tuple[bytes, bytes]], padding: int) -> bytes:
    """An ID3v2.3 tag (sizes syncsafe in the header, plain in frames, as v2.3 writes them)."""
    body = b"".join(fid + struct.pack(">I", len(data)) + b"\x00\x00" + data for fid, data in frames)
    size = len(body) + padding
    syncsafe = bytes([(size >> 21) & 127, (size >> 14) & 127, (size >> 7) & 127, size & 127])
    return b"ID3\x03\x00\x00" + syncsafe + body + b"\x00" * padding


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


@functools.cache
def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


def _crc16(data: bytes) -> int:
    table, crc = _crc16_table(), 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def _utf8_number(number: int) -> bytes:
    """FLAC's frame number coding (UTF-8's bit layout, up to 36 bits)."""
    if number < 0x80:
        return bytes([number])
    if number < 0x800:
        return bytes([0xC0 | number >> 6, 0x80 | number & 63])
    return bytes([0xE0 | number >> 12, 0x80 | (number >> 6) & 63, 0x80 | number & 63])


def constant_flac(frames: int, *, claimed_samples: int | None, block: int = 65_535) -> bytes:
    """8 kHz 16-bit mono FLAC of digital silence in the largest frames the format allows:
    15 bytes decode to 8.2 s, so hours fit in tens of kilobytes (the shape of a real bomb).
    ``claimed_samples`` goes in STREAMINFO (0 means "unknown", as streaming encoders write)."""
    total = frames * block if claimed_samples is None else claimed_samples
    info = struct.pack(">HH", block, block) + b"\x00" * 6
    info += ((8_000 << 44) | (0 << 41) | (15 << 36) | total).to_bytes(8, "big") + b"\x00" * 16
    out = bytearray(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    for number in range(frames):
        # Sync, fixed blocking; block size from the 16-bit field, 8 kHz; mono, 16 bits.
        header = (
            bytes([0xFF, 0xF8, 0x74, 0x08]) + _utf8_number(number) + struct.pack(">H", block - 1)
        )
        frame = header + bytes([_crc8(header)]) + b"\x00" + b"\x00\x00"  # constant subframe: 0
        out += frame + struct.pack(">H", _crc16(frame))
    return bytes(out)


def patch_flac_total(data: bytes, total_samples: int) -> bytes:
    """Rewrite STREAMINFO's 36-bit total sample count (bytes 8+10..8+18 hold rate..total)."""
    start = 8 + 10
    packed = int.from_bytes(data[start : start + 8], "big")
    packed = (packed & ~((1 << 36) - 1)) | total_samples
    return data[:start] + packed.to_bytes(8, "big") + data[start + 8 :]


# ------------------------------------------------------------------------------ ffmpeg


class _Encoder:
    """Runs the bundled ffmpeg into files under one temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def run(self, args: Sequence[str], suffix: str, stdin: bytes | None = None) -> bytes:
        self.count += 1
        out = self.folder / f"{self.count}{suffix}"
        command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
        if out.suffix != ".pipe":
            command.append(str(out))
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"corpus: ffmpeg {args} failed: {done.stderr.decode()[-600:]}")
        return done.stdout if out.suffix == ".pipe" else out.read_bytes()

    def encode(
        self, frames: np.ndarray, rate: int, codec_args: Sequence[str], suffix: str
    ) -> bytes:
        """``frames`` (int16, samples or samples x channels) through ``codec_args``."""
        channels = 1 if frames.ndim == 1 else frames.shape[1]
        source = ["-f", "s16le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0"]
        args = [*source, *BITEXACT, *NO_METADATA, *codec_args]
        if suffix == ".pipe":
            args.append("pipe:1")
        return self.run(args, suffix, stdin=frames.astype("<i2").tobytes())

    def with_picture(
        self,
        audio: bytes,
        audio_suffix: str,
        picture: Sequence[str],
        codec_args: Sequence[str],
        suffix: str,
    ) -> bytes:
        """A video (``picture``: ffmpeg input and codec options) first, then ``audio``'s track."""
        source = self.folder / f"src{self.count}{audio_suffix}"
        source.write_bytes(audio)
        args = [
            *picture[:-2],
            "-i",
            str(source),
            "-map",
            "0:v",
            "-map",
            "1:a",
            *picture[-2:],
            "-c:a",
            "copy",
            *BITEXACT,
            *NO_METADATA,
            *codec_args,
        ]
        return self.run(args, suffix)

    def decoded_seconds(self, data: bytes, suffix: str) -> float:
        """How much audio ffmpeg decodes from ``data``: the truth for a truncated file."""
        source = self.folder / f"measure{self.count}{suffix}"
        source.write_bytes(data)
        pcm = self.run(
            [
                "-i",
                str(source),
                "-map",
                "0:a:0",
                "-ac",
                "1",
                "-ar",
                "48000",
                "-f",
                "f32le",
                "pipe:1",
            ],
            ".pipe",
        )
        return len(pcm) / 4 / 48_000


# ------------------------------------------------------------------------------- cases


def _accept(
    name: str,
    data: bytes,
    key: str,
    content_type: str,
    duration_s: float,
    why: str,
    channels: int = 1,
) -> CorpusCase:
    expected = {"duration_s": round(duration_s, 4), "channels": channels}
    return CorpusCase(name, "audio", data, key, content_type, ACCEPT, expected, why)


def _refuse(
    name: str, data: bytes, key: str, content_type: str, code: str, why: str, **expected: float
) -> CorpusCase:
    return CorpusCase(name, "audio", data, key, content_type, code, dict(expected), why)


@functools.cache
def audio_cases() -> list[CorpusCase]:
    """Every audio case, built once per process (about 2 MB, a few seconds on 2 cores)."""
    with tempfile.TemporaryDirectory(prefix="audio-corpus-") as folder:
        encoder = _Encoder(Path(folder))
        cases = [*_wav_cases(encoder), *_other_containers(encoder), *_refusals(encoder)]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


def _wav_cases(enc: _Encoder) -> list[CorpusCase]:
    rate = 16_000
    speech = voice(1.25, rate, seed=1)
    int16 = pcm16(speech)
    seconds = int16.size / rate
    cases = [
        _accept(
            "wav-pcm16",
            wav(fmt_chunk(1, 1, rate, 16), int16.tobytes()),
            "voice.wav",
            "audio/wav",
            seconds,
            "the plain case: 16-bit PCM, 16 kHz mono",
        ),
        _accept(
            "wav-pcm8-unsigned",
            wav(
                fmt_chunk(1, 1, rate, 8), (np.round(speech * 127) + 128).astype(np.uint8).tobytes()
            ),
            "voice.wav",
            "audio/x-wav",
            seconds,
            "8-bit WAV is unsigned, centred on 128",
        ),
        _accept(
            "wav-pcm24",
            wav(
                fmt_chunk(1, 1, rate, 24),
                b"".join(
                    int(v).to_bytes(3, "little", signed=True)
                    for v in np.round(speech * 8_388_607).astype(np.int64)
                ),
            ),
            "voice.wav",
            "audio/wav",
            seconds,
            "24-bit samples, packed 3 bytes each",
        ),
        _accept(
            "wav-pcm32",
            wav(
                fmt_chunk(1, 1, rate, 32), np.round(speech * 2**31 * 0.999).astype("<i4").tobytes()
            ),
            "voice.wav",
            "audio/wav",
            seconds,
            "32-bit integer PCM",
        ),
        _accept(
            "wav-float32",
            wav(fmt_chunk(3, 1, rate, 32), speech.astype("<f4").tobytes()),
            "voice.wav",
            "audio/wav",
            seconds,
            "IEEE float WAV (DAWs, Audacity)",
        ),
        _accept(
            "wav-float64",
            wav(fmt_chunk(3, 1, rate, 64), speech.astype("<f8").tobytes()),
            "voice.wav",
            "audio/wav",
            seconds,
            "64-bit float WAV",
        ),
        _accept(
            "wav-float-over-full-scale",
            wav(fmt_chunk(3, 1, rate, 32), (speech * 12.0).astype("<f4").tobytes()),
            "hot.wav",
            "audio/wav",
            seconds,
            "float samples up to +-3.6: must come out level and unclipped",
        ),
        _accept(
            "wav-quiet-minus-62-lufs",
            wav(fmt_chunk(1, 1, rate, 16), pcm16(speech * 0.01).tobytes()),
            "far-from-mic.wav",
            "audio/wav",
            seconds,
            "speech 40 dB down (-62 LUFS): quiet is not silent",
        ),
        _accept(
            "wav-mulaw-8k",
            enc.encode(
                pcm16(voice(1.4, 8_000, seed=2)), 8_000, ["-c:a", "pcm_mulaw", "-f", "wav"], ".wav"
            ),
            "call.wav",
            "audio/wav",
            1.4,
            "G.711 mu-law, as telephony systems export",
        ),
        _accept(
            "wav-alaw-8k",
            enc.encode(
                pcm16(voice(1.4, 8_000, seed=3)), 8_000, ["-c:a", "pcm_alaw", "-f", "wav"], ".wav"
            ),
            "call.wav",
            "audio/wav",
            1.4,
            "G.711 A-law",
        ),
        _accept(
            "wav-extensible-stereo-24",
            wav(
                fmt_chunk(1, 2, rate, 24, extensible=True),
                b"".join(
                    int(v).to_bytes(3, "little", signed=True)
                    for v in np.round(np.repeat(speech, 2) * 8_388_607).astype(np.int64)
                ),
            ),
            "voice.wav",
            "audio/wav",
            seconds,
            "WAVE_FORMAT_EXTENSIBLE with a PCM sub-format GUID",
            channels=2,
        ),
        _accept(
            "wav-rf64",
            enc.encode(int16, rate, ["-c:a", "pcm_s16le", "-rf64", "always", "-f", "wav"], ".wav"),
            "voice.wav",
            "audio/wav",
            seconds,
            "RF64 (broadcast WAV over 4 GB), sizes in ds64",
        ),
        _accept(
            "wav-bw64",
            b"BW64"
            + enc.encode(
                int16, rate, ["-c:a", "pcm_s16le", "-rf64", "always", "-f", "wav"], ".wav"
            )[4:],
            "voice.wav",
            "audio/wav",
            seconds,
            "BW64 (ITU-R BS.2088), RF64 by another tag",
        ),
        _accept(
            "wav-piped-ffffffff",
            enc.encode(int16, rate, ["-c:a", "pcm_s16le", "-f", "wav"], ".pipe"),
            "stream.wav",
            "application/octet-stream",
            seconds,
            "written to a pipe: RIFF and data sizes are the 0xFFFFFFFF placeholders",
        ),
        _accept(
            "wav-bext-list-junk-before-data",
            wav(
                fmt_chunk(1, 1, rate, 16),
                int16.tobytes(),
                before_data=[
                    chunk(b"bext", b"Field recorder".ljust(256, b"\x00") + b"\x00" * 346),
                    chunk(b"LIST", b"INFO" + chunk(b"INAM", b"Interview, take 3\x00")),
                    chunk(b"JUNK", b"\x00" * 27),  # odd length: the pad byte must be honoured
                ],
            ),
            "take3.wav",
            "audio/wav",
            seconds,
            "bext, LIST and an odd-sized JUNK before data",
        ),
        _accept(
            "wav-stereo-right-only",
            wav(fmt_chunk(1, 2, rate, 16), on_channel(int16, 2, 1).tobytes()),
            "interview.wav",
            "audio/wav",
            seconds,
            "speech on the right channel only (a lavalier on one input): not silent",
            channels=2,
        ),
        _accept(
            "wav-5.1-centre-only",
            wav(
                fmt_chunk(1, 6, 8_000, 16, extensible=True),
                on_channel(pcm16(voice(1.2, 8_000, seed=4)), 6, 2).tobytes(),
            ),
            "film.wav",
            "audio/wav",
            1.2,
            "5.1 with dialogue on the centre channel",
            channels=6,
        ),
        _accept(
            "wav-8k",
            wav(fmt_chunk(1, 1, 8_000, 16), pcm16(voice(1.3, 8_000, seed=5)).tobytes()),
            "voice.wav",
            "audio/wav",
            1.3,
            "8 kHz, the lowest rate speech comes in",
        ),
        _accept(
            "w64-sony-wave64",
            enc.encode(int16, rate, ["-c:a", "pcm_s16le", "-f", "w64"], ".w64"),
            "voice.w64",
            "application/octet-stream",
            seconds,
            "Sony Wave64 (GUID chunks)",
        ),
        _accept(
            "wav-header-claims-hours-holds-1.25s",
            wav(
                fmt_chunk(1, 1, rate, 16),
                int16.tobytes(),
                data_size=0x7FFF_0000,
                riff_size=0x7FFF_1000,
            ),
            "voice.wav",
            "audio/wav",
            seconds,
            "data size says 18.6 h: PCM is measured by its bytes, so it is the 1.25 s it holds",
        ),
        _accept(
            "wav-content-named-mp3",
            wav(fmt_chunk(1, 1, rate, 16), pcm16(voice(1.6, rate, seed=6)).tobytes()),
            "voice.mp3",
            "audio/mpeg",
            1.6,
            "a WAV behind an .mp3 key and type",
        ),
    ]
    return cases


def _other_containers(enc: _Encoder) -> list[CorpusCase]:
    rate = 44_100
    speech = pcm16(voice(2.0, rate, seed=10))
    lame = ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"]
    mp3 = enc.encode(speech, rate, [*lame, "-id3v2_version", "0"], ".mp3")
    flac = enc.encode(speech, rate, ["-c:a", "flac", "-f", "flac"], ".flac")
    cover = stored_png(96, 96, seed=1)
    tag = id3v2(
        [
            (b"APIC", b"\x00image/png\x00\x03Cover\x00" + cover),
            (b"TIT2", b"\x00Episode 12"),
            (b"TPE1", b"\x00A Podcast"),
            (b"COMM", b"\x00eng\x00" + b"Show notes. " * 4000),
        ],
        padding=8_192,
    )
    m4a = enc.encode(speech, rate, ["-c:a", "aac", "-b:a", "64k", "-f", "ipod"], ".m4a")
    short_rate = 48_000
    opus_source = pcm16(voice(1.8, short_rate, seed=11))
    webm = enc.encode(
        opus_source, short_rate, ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"], ".pipe"
    )
    picture = ["-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=2", "-c:v", "mjpeg"]
    mpeg4 = ["-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=2", "-c:v", "mpeg4"]
    still = ["-f", "lavfi", "-i", "testsrc=s=64x64:r=1:d=1", "-c:v", "mjpeg"]
    # Cut from 2.5 s sources, so that what survives is over MIN_AUDIO_S.
    longer = pcm16(voice(2.5, rate, seed=14))
    truncated_mp3 = enc.encode(longer, rate, [*lame, "-id3v2_version", "0"], ".mp3")
    truncated_mp3 = truncated_mp3[: int(len(truncated_mp3) * 0.62)]
    truncated_flac = enc.encode(longer, rate, ["-c:a", "flac", "-f", "flac"], ".flac")
    truncated_flac = truncated_flac[: int(len(truncated_flac) * 0.6)]
    small = pcm16(voice(1.5, 16_000, seed=15))
    return [
        _accept(
            "aiff-pcm16",
            enc.encode(small, 16_000, ["-c:a", "pcm_s16be", "-f", "aiff"], ".aiff"),
            "voice.aiff",
            "audio/aiff",
            1.5,
            "AIFF, big-endian PCM (Logic, GarageBand)",
        ),
        _accept(
            "aifc-float32",
            enc.encode(small, 16_000, ["-c:a", "pcm_f32be", "-f", "aiff"], ".aifc"),
            "voice.aifc",
            "audio/x-aiff",
            1.5,
            "AIFC with 'fl32' compression",
        ),
        _accept(
            "caf-alac",
            enc.encode(small, 16_000, ["-c:a", "alac", "-f", "caf"], ".caf"),
            "voice.caf",
            "audio/x-caf",
            1.5,
            "Apple Lossless in CAF (iOS recordings)",
        ),
        _accept(
            "mp3-id3-cover-art",
            tag + mp3,
            "episode.mp3",
            "audio/mpeg",
            2.0,
            "an 84 KB ID3v2 tag with a PNG cover (a picture stream beside the audio)",
        ),
        _accept(
            "mp3-cbr-no-id3-no-xing",
            enc.encode(speech, rate, [*lame, "-id3v2_version", "0", "-write_xing", "0"], ".mp3"),
            "voice.mp3",
            "audio/mpeg",
            2.0,
            "bare MPEG frames: length only estimated",
        ),
        _accept(
            "aac-adts-no-extension",
            enc.encode(
                opus_source, short_rate, ["-c:a", "aac", "-b:a", "64k", "-f", "adts"], ".aac"
            ),
            "voice",
            "binary/octet-stream",
            1.8,
            "raw AAC (ADTS), no extension, S3's default type",
        ),
        _accept(
            "m4a-aac", m4a, "Voice Memo.m4a", "audio/mp4", 2.0, "AAC in M4A (phone voice memos)"
        ),
        _accept("m4a-named-wav", m4a, "voice.wav", "audio/wav", 2.0, "an M4A behind a .wav key"),
        _accept(
            "mov-video-first",
            enc.with_picture(m4a, ".m4a", picture, ["-f", "mov"], ".mov"),
            "clip.mov",
            "video/quicktime",
            2.0,
            "QuickTime movie: video is stream 0, AAC stream 1",
        ),
        _accept(
            "mp4-video-first",
            enc.with_picture(m4a, ".m4a", mpeg4, ["-f", "mp4"], ".mp4"),
            "clip.mp4",
            "video/mp4",
            2.0,
            "MP4 video with sound: the audio track is taken",
        ),
        _accept("flac", flac, "voice.flac", "audio/flac", 2.0, "FLAC 16-bit 44.1 kHz"),
        _accept(
            "flac-96k-24bit",
            enc.encode(
                pcm16(voice(1.2, 96_000, seed=12)),
                96_000,
                ["-c:a", "flac", "-sample_fmt", "s32", "-f", "flac"],
                ".flac",
            ),
            "master.flac",
            "audio/flac",
            1.2,
            "96 kHz 24-bit studio master",
        ),
        _accept(
            "ogg-vorbis",
            enc.encode(speech, rate, ["-c:a", "libvorbis", "-q:a", "2", "-f", "ogg"], ".ogg"),
            "voice.ogg",
            "audio/ogg",
            2.0,
            "Ogg Vorbis",
        ),
        _accept(
            "ogg-opus",
            enc.encode(
                opus_source, short_rate, ["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"], ".opus"
            ),
            "voice.opus",
            "audio/ogg",
            1.8,
            "Ogg Opus (WhatsApp, Telegram voice notes)",
        ),
        _accept(
            "webm-opus-mediarecorder",
            webm,
            "recording.webm",
            "video/webm",
            1.8,
            "Opus in WebM written live: no duration, no cues, as a browser uploads it",
        ),
        _accept(
            "mkv-still-picture-first-vorbis",
            enc.with_picture(
                enc.encode(speech, rate, ["-c:a", "libvorbis", "-q:a", "2", "-f", "ogg"], ".ogg"),
                ".ogg",
                still,
                ["-f", "matroska"],
                ".mkv",
            ),
            "talk.mkv",
            "application/octet-stream",
            2.0,
            "Matroska, a one-frame video first",
        ),
        _accept(
            "amr-nb",
            enc.encode(
                pcm16(voice(1.6, 8_000, seed=13)),
                8_000,
                ["-c:a", "libopencore_amrnb", "-b:a", "12.2k", "-f", "amr"],
                ".amr",
            ),
            "memo.amr",
            "application/octet-stream",
            1.6,
            "AMR-NB 12.2 kbit/s (older phones)",
        ),
        _accept(
            "mp3-truncated",
            truncated_mp3,
            "voice.mp3",
            "audio/mpeg",
            enc.decoded_seconds(truncated_mp3, ".mp3"),
            "upload cut at 62%: what decodes (over 1 s) is used, like every player",
        ),
        _accept(
            "flac-truncated",
            truncated_flac,
            "voice.flac",
            "audio/flac",
            enc.decoded_seconds(truncated_flac, ".flac"),
            "FLAC cut at 60% mid-frame",
        ),
    ]


def _refusals(enc: _Encoder) -> list[CorpusCase]:
    rate = 16_000
    rng = np.random.default_rng(99)
    fmt16 = fmt_chunk(1, 1, rate, 16)
    seconds = 1.2
    count = int(seconds * rate)
    dither = (rng.integers(0, 2, count) - rng.integers(0, 2, count)).astype("<i2")
    nan = voice(seconds, rate, seed=20).astype("<f4")
    nan[8_000:8_004] = np.nan
    inf = voice(seconds, rate, seed=21).astype("<f4")
    inf[100] = np.inf
    low = ["-c:a", "libmp3lame", "-b:a", "8k", "-ar", "8000", "-ac", "1"]
    minute = pcm16(voice(60.0, 8_000, seed=22))
    eleven_minutes = np.tile(minute, 11)
    flac = enc.encode(
        pcm16(voice(2.0, 44_100, seed=23)), 44_100, ["-c:a", "flac", "-f", "flac"], ".flac"
    )
    mp3 = enc.encode(
        pcm16(voice(2.0, 44_100, seed=24)),
        44_100,
        [
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-id3v2_version",
            "0",
            "-write_xing",
            "0",
            "-f",
            "mp3",
        ],
        ".mp3",
    )
    garbage = bytes(rng.integers(0, 256, 24_000, dtype=np.uint8))
    jpeg = enc.run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=64x64:d=1",
            "-frames:v",
            "1",
            *BITEXACT,
            "-c:v",
            "mjpeg",
            "-f",
            "image2",
        ],
        ".jpg",
    )
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("word/document.xml", (2020, 1, 1, 0, 0, 0)), "<w:document/>"
        )
    hours = 10 * 3600
    bomb = constant_flac(hours * 8_000 // 65_535 + 1, claimed_samples=None)
    return [
        _refuse(
            "wav-digital-silence",
            wav(fmt16, bytes(count * 2)),
            "voice.wav",
            "audio/wav",
            "audio_silent",
            "all zero samples",
        ),
        _refuse(
            "wav-dither-only",
            wav(fmt16, dither.tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_silent",
            "TPDF dither of +-1 LSB at 16 bits (about -95 dBFS), nothing else",
        ),
        _refuse(
            "ogg-opus-silence",
            enc.encode(
                np.zeros(48_000 * 2, "<i2"), 48_000, ["-c:a", "libopus", "-f", "ogg"], ".opus"
            ),
            "voice.opus",
            "audio/ogg",
            "audio_silent",
            "an encoded silence",
        ),
        _refuse(
            "wav-float-nan",
            wav(fmt_chunk(3, 1, rate, 32), nan.tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "four NaN samples in a float WAV (not silence)",
        ),
        _refuse(
            "wav-float-inf",
            wav(fmt_chunk(3, 1, rate, 32), inf.tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "one infinite sample in a float WAV",
        ),
        _refuse(
            "wav-0.3s",
            wav(fmt16, pcm16(voice(0.3, rate, seed=25)).tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_too_short",
            "0.3 s of speech",
        ),
        _refuse(
            "wav-no-samples",
            wav(fmt16, b""),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "a header and an empty data chunk",
        ),
        _refuse(
            "mp3-25s-no-xing",
            enc.encode(
                np.tile(minute[: 8_000 * 25], 1),
                8_000,
                [*low, "-write_xing", "0", "-f", "mp3"],
                ".mp3",
            ),
            "long.mp3",
            "audio/mpeg",
            "audio_too_long",
            "25 s, no length in any header: refused when the decode passes the maximum",
            duration_s=25.0,
        ),
        _refuse(
            "mp3-11min-8kbps",
            enc.encode(eleven_minutes, 8_000, [*low, "-f", "mp3"], ".mp3"),
            "lecture.mp3",
            "audio/mpeg",
            "audio_too_long",
            "a genuine 11 minutes at 8 kbit/s (Xing header): too long, not a bomb",
            duration_s=660.0,
        ),
        _refuse(
            "webm-opus-30s-no-duration",
            enc.encode(
                pcm16(voice(30.0, 48_000, seed=26)),
                48_000,
                ["-c:a", "libopus", "-b:a", "8k", "-f", "webm"],
                ".pipe",
            ),
            "recording",
            "video/webm",
            "audio_too_long",
            "a 30 s MediaRecorder upload: no duration, stopped at the cap",
            duration_s=30.0,
        ),
        _refuse(
            "flac-10h-silence-bomb",
            bomb,
            "voice.flac",
            "audio/flac",
            "decompression_bomb",
            f"{len(bomb) // 1024} KB of maximal FLAC frames that really decode to 10 h",
            claimed_s=float(hours),
        ),
        _refuse(
            "flac-claims-10h-holds-2s",
            patch_flac_total(flac, hours * 44_100),
            "voice.flac",
            "audio/flac",
            "decompression_bomb",
            "STREAMINFO claims 10 h: a lie and a bomb look the same, both refused unread",
            claimed_s=float(hours),
        ),
        _refuse(
            "flac-10h-silence-no-length",
            constant_flac(hours * 8_000 // 65_535 + 1, claimed_samples=0),
            "voice.flac",
            "audio/flac",
            "audio_too_long",
            "the same bomb with no length: the decode stops at the cap (too big a file for "
            "the bomb ratio at the cap, so too long)",
            duration_s=float(hours),
        ),
        _refuse(
            "png-as-audio",
            stored_png(32, 32, seed=2),
            "voice.wav",
            "audio/wav",
            "unsupported_format",
            "a PNG behind a .wav key",
        ),
        _refuse("jpeg-as-audio", jpeg, "voice.mp3", "audio/mpeg", "unsupported_format", "a JPEG"),
        _refuse(
            "pdf-as-audio",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
            "transcript.pdf",
            "application/pdf",
            "unsupported_format",
            "a PDF",
        ),
        _refuse(
            "svg-as-audio",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><circle cx="5" cy="5" r="4"/></svg>\n',
            "waveform.svg",
            "image/svg+xml",
            "unsupported_format",
            "an SVG drawing",
        ),
        _refuse(
            "midi-as-audio",
            b"MThd"
            + struct.pack(">IHHH", 6, 0, 1, 96)
            + b"MTrk"
            + struct.pack(">I", 4)
            + b"\x00\xff\x2f\x00",
            "song.mid",
            "audio/midi",
            "unsupported_format",
            "MIDI is notes, not sound",
        ),
        _refuse(
            "docx-as-audio",
            docx.getvalue(),
            "script.docx",
            "application/octet-stream",
            "unsupported_format",
            "a Word document (a zip)",
        ),
        _refuse(
            "random-bytes",
            garbage,
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "24 KB of noise bytes",
        ),
        _refuse(
            "text-file",
            b"speaker,line\nA,Hello there\nB,Hi!\n" * 40,
            "lines.wav",
            "audio/wav",
            "audio_invalid",
            "a CSV script uploaded instead of the recording",
        ),
        _refuse("empty-file", b"", "voice.wav", "audio/wav", "audio_invalid", "zero bytes"),
        _refuse(
            "mp3-garbage-frames",
            mp3[:4] + garbage,
            "voice.mp3",
            "audio/mpeg",
            "audio_invalid",
            "a valid first frame header, then noise",
        ),
        _refuse(
            "flac-corrupt-frames",
            flac[:42] + garbage,
            "voice.flac",
            "audio/flac",
            "audio_invalid",
            "a valid STREAMINFO, then noise where frames should be",
        ),
        _refuse(
            "mp4-video-only",
            enc.run(
                [
                    *["-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=2"],
                    *BITEXACT,
                    *NO_METADATA,
                    "-c:v",
                    "mpeg4",
                    "-f",
                    "mp4",
                ],
                ".mp4",
            ),
            "clip.mp4",
            "video/mp4",
            "audio_invalid",
            "a silent-film MP4: no audio track",
        ),
        _refuse(
            "wav-rate-2mhz",
            wav(fmt_chunk(1, 1, 2_000_000, 16), pcm16(voice(0.5, rate, 27)).tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "a sample rate of 2 MHz",
        ),
        _refuse(
            "wav-rate-1khz",
            wav(fmt_chunk(1, 1, 1_000, 16), pcm16(voice(2.0, 1_000, 28)).tobytes()),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "a sample rate of 1 kHz",
        ),
        _refuse(
            "wav-100-channels",
            wav(fmt_chunk(1, 100, rate, 16), bytes(200 * 40)),
            "voice.wav",
            "audio/wav",
            "audio_invalid",
            "100 channels",
        ),
    ]
