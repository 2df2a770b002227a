"""What a file is, from its first bytes: the one place both sides decide a format.

Key extensions and S3 ``Content-Type`` say what an uploader *guessed*; browsers send WebM as
``video/webm``, phones save AAC with no extension, and S3 defaults to
``binary/octet-stream``. So inputs are judged by content only. The AWS side reads the first
:data:`SNIFF_BYTES` of each input with a ranged GET and refuses what can never work before a job
exists; the worker runs the same check on what it downloaded, then decodes for real.

Pure standard library: the Lambda zip carries this module beside the wire contract.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from modal_service.audio_rules import flac_duration, length_refusal
from modal_service.image_rules import header_dimensions, image_size_refusal
from modal_service.video_rules import (
    ACCEPTED_VIDEO,
    MAX_VIDEO_BYTES,
    header_duration,
    video_bytes_refusal,
    video_length_refusal,
)

SNIFF_BYTES = 4096
"""Enough for every signature below, an MP4 ``ftyp`` box with many brands and an SVG's prolog."""

Family = Literal["audio", "video", "image", "document", "unknown"]


class Sniffed(NamedTuple):
    family: Family
    """``audio`` or ``video``: a container that may hold an audio track; ``document``: a format
    never accepted as either input (PDF, SVG, PostScript, Photoshop, MIDI, ...)."""
    name: str
    """Short format name for messages: ``wav``, ``webm``, ``png``, ``pdf``, ``unknown``. A video
    container is ``mp4``, ``mov``, ``webm``, ``matroska`` or ``avi``: its codec (AV1, HEVC...) is
    the decoder's business, never the first bytes'."""


UNKNOWN = Sniffed("unknown", "unknown")

ACCEPTED_AUDIO = (
    "WAV (PCM 8-32 bit, float, mu-law, A-law, RF64/BW64), AIFF/AIFC, CAF, MP3, AAC (ADTS, "
    "M4A/MP4/MOV), FLAC, Ogg Vorbis/Opus, WebM/Matroska, AMR, or a video file's audio track"
)
ACCEPTED_IMAGES = "JPEG, PNG, WebP, AVIF, HEIC/HEIF, BMP, TIFF or GIF"
VIDEO_CONTAINERS = frozenset({"mp4", "mov", "webm", "matroska"})
"""The source video's containers (dubbing). AVI is refused: the issue's list, and a container
with no rotation field and unreliable timestamps."""

# ISO-BMFF brands of still images (HEIF/AVIF); any other ftyp is an audio/video movie.
_IMAGE_BRANDS = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
)
_BOX_TYPES = frozenset({b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})


def sniff(head: bytes) -> Sniffed:
    """Identify ``head`` (the first bytes of a file; :data:`SNIFF_BYTES` suffice)."""
    for check in (_riff_like, _iso_bmff, _matroska, _signatures, _mpeg_audio, _text_formats):
        found = check(head)
        if found is not None:
            return found
    return UNKNOWN


def _riff_like(head: bytes) -> Sniffed | None:
    tag, form = head[:4], head[8:12]
    if tag in (b"RIFF", b"RF64", b"BW64") and form == b"WAVE":
        return Sniffed("audio", "wav")
    if tag == b"RIFF" and form == b"WEBP":
        return Sniffed("image", "webp")
    if tag == b"RIFF" and form == b"AVI ":
        return Sniffed("video", "avi")
    if tag == b"FORM" and form in (b"AIFF", b"AIFC"):
        return Sniffed("audio", "aiff")
    if head[:16] == b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00":
        return Sniffed("audio", "w64")
    return None


def _iso_bmff(head: bytes) -> Sniffed | None:
    box = head[4:8]
    if box == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]}
        end = min(max(size, 16), len(head))
        brands.update(head[offset : offset + 4] for offset in range(16, end - 3, 4))
        if head[8:12] in _IMAGE_BRANDS or (brands & _IMAGE_BRANDS and not brands & _MOVIE_BRANDS):
            return Sniffed("image", "avif" if brands & {b"avif", b"avis"} else "heif")
        if head[8:12] in (b"M4A ", b"M4B ", b"M4P "):
            return Sniffed("audio", "m4a")
        return Sniffed("video", "mov" if head[8:12] == b"qt  " else "mp4")
    if box in _BOX_TYPES:
        return Sniffed("video", "mov")
    return None


def _matroska(head: bytes) -> Sniffed | None:
    """EBML magic; the header's DocType (``webm``, ``matroska``) names it. WebM is Matroska
    restricted to VP8/VP9/AV1 and Vorbis/Opus, and a browser's voice note is WebM too."""
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    # The DocType element (ID 0x4282) comes within the EBML header's first few dozen bytes,
    # its size a one-byte EBML integer (0x80 | length) for every real writer.
    at = head.find(b"\x42\x82", 4, 64)
    if at != -1 and at + 3 <= len(head) and head[at + 2] & 0x80:
        doctype = head[at + 3 : at + 3 + (head[at + 2] & 0x7F)]
        if doctype == b"webm":
            return Sniffed("video", "webm")
    return Sniffed("video", "matroska")


# Brands that make a file a movie even when it also lists an image brand.
_MOVIE_BRANDS = frozenset({b"isom", b"iso2", b"mp41", b"mp42", b"M4A ", b"M4V ", b"qt  ", b"3gp4"})

_SIGNATURES: tuple[tuple[bytes, Sniffed], ...] = (
    (b"fLaC", Sniffed("audio", "flac")),
    (b"OggS", Sniffed("audio", "ogg")),
    (b"caff", Sniffed("audio", "caf")),
    (b"#!AMR", Sniffed("audio", "amr")),
    (b"ID3", Sniffed("audio", "mp3")),
    (b"\x89PNG\r\n\x1a\n", Sniffed("image", "png")),
    (b"\xff\xd8\xff", Sniffed("image", "jpeg")),
    (b"GIF87a", Sniffed("image", "gif")),
    (b"GIF89a", Sniffed("image", "gif")),
    (b"BM", Sniffed("image", "bmp")),
    (b"II*\x00", Sniffed("image", "tiff")),
    (b"MM\x00*", Sniffed("image", "tiff")),
    (b"II+\x00", Sniffed("image", "tiff")),  # BigTIFF
    (b"MM\x00+", Sniffed("image", "tiff")),
    (b"%PDF-", Sniffed("document", "pdf")),
    (b"%!PS", Sniffed("document", "postscript")),
    (b"\xc5\xd0\xd3\xc6", Sniffed("document", "postscript")),  # DOS EPS binary header
    (b"8BPS", Sniffed("document", "photoshop")),
    (b"MThd", Sniffed("document", "midi")),
    (b"PK\x03\x04", Sniffed("document", "zip")),
    (b"\xff\x0a", Sniffed("document", "jpeg-xl")),
    (b"\x00\x00\x00\x0cJXL ", Sniffed("document", "jpeg-xl")),
)


def _signatures(head: bytes) -> Sniffed | None:
    for magic, found in _SIGNATURES:
        if head.startswith(magic):
            if found.name == "bmp" and not _plausible_bmp(head):
                continue
            return found
    return None


def _plausible_bmp(head: bytes) -> bool:
    # "BM" alone is two common letters; a BMP's info header size is one of a few values.
    return len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
        12,
        40,
        52,
        56,
        64,
        108,
        124,
    )


def _mpeg_audio(head: bytes) -> Sniffed | None:
    """Raw MPEG audio frames: MP3 (layer III/II) or AAC in ADTS (layer bits 00)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x3
    if (head[1] & 0xF6) == 0xF0:  # MPEG-2/4 sync, layer 00: ADTS
        sampling_index = (head[2] >> 2) & 0xF
        return Sniffed("audio", "aac") if sampling_index < 13 else None
    version = (head[1] >> 3) & 0x3
    bitrate_index = head[2] >> 4
    rate_index = (head[2] >> 2) & 0x3
    if version == 1 or layer == 0 or bitrate_index == 0xF or rate_index == 3:
        return None
    return Sniffed("audio", "mp3")


def _text_formats(head: bytes) -> Sniffed | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # An SVG may open with its root, an XML declaration, a comment or a DOCTYPE before <svg.
    prologue = text.startswith((b"<?xml", b"<!--", b"<!doctype svg"))
    if text.startswith(b"<svg") or (prologue and b"<svg" in text):
        return Sniffed("document", "svg")
    if text.startswith((b"<!doctype html", b"<html")):
        return Sniffed("document", "html")
    return None


def audio_refusal(head: bytes) -> tuple[str, str] | None:
    """``(code, reason)`` when ``head`` can never be an audio input; None when it may be.

    A container that may carry sound (audio or video) passes; whether it really holds a
    decodable track is the decoder's call. Images and documents are ``unsupported_format``;
    bytes that match nothing are ``audio_invalid``.
    """
    found = sniff(head)
    if found.family in ("audio", "video"):
        return None
    if not head:
        return "audio_invalid", "is empty"
    if found.family in ("image", "document"):
        return "unsupported_format", f"is {_label(found)}, not audio; send {ACCEPTED_AUDIO}"
    return "audio_invalid", f"is not a recognised audio format; send {ACCEPTED_AUDIO}"


def image_refusal(head: bytes) -> tuple[str, str] | None:
    """``(code, reason)`` when ``head`` can never be a portrait; None when it may be."""
    found = sniff(head)
    if found.family == "image":
        return None
    if not head:
        return "image_invalid", "is empty"
    if found.family != "unknown":
        return "unsupported_format", f"is {_label(found)}, not a photo; send {ACCEPTED_IMAGES}"
    return "image_invalid", f"is not a recognised image format; send {ACCEPTED_IMAGES}"


def video_refusal(head: bytes) -> tuple[str, str] | None:
    """``(code, reason)`` when ``head`` can never be a source video; None when it may be.

    Whether the container really holds a decodable video track (not just sound: a WebM voice
    note, an AAC in MP4) is the worker's probe's call, which answers ``video_invalid``.
    """
    found = sniff(head)
    if found.family == "video" and found.name in VIDEO_CONTAINERS:
        return None
    if not head:
        return "video_invalid", "is empty"
    if found.family == "video":
        return "unsupported_format", f"is {_label(found)}; send {ACCEPTED_VIDEO}"
    if found.family != "unknown":
        return "unsupported_format", f"is {_label(found)}, not a video; send {ACCEPTED_VIDEO}"
    return "video_invalid", f"is not a recognised video format; send {ACCEPTED_VIDEO}"


def _label(found: Sniffed) -> str:
    kind = {"audio": "audio", "video": "video", "image": "an image"}.get(found.family, "a document")
    return f"{kind} ({found.name})"


def first_bytes_refusal(
    kind: Literal["audio", "image", "video"],
    head: bytes,
    size: int,
    max_audio_s: float | None = None,
    *,
    max_video_s: float | None = None,
    max_video_bytes: int = MAX_VIDEO_BYTES,
) -> tuple[str, str] | None:
    """What the submit path refuses from an input's first bytes and its size, before a job
    exists: not audio / not an image / not a video; a picture whose header breaks the size
    rules; a FLAC whose header claims more than ``max_audio_s`` (a bomb when it is tiny for that
    length); a video over ``max_video_bytes``, or whose header (``moov`` first, a Matroska
    ``Duration``) says it lasts more than ``max_video_s``."""
    if kind == "video":
        refusal = video_refusal(head) or video_bytes_refusal(size, max_video_bytes)
        if refusal is None and max_video_s is not None:
            claimed = header_duration(head)
            if claimed is not None:
                refusal = video_length_refusal(claimed, max_video_s)
        return refusal
    if kind == "audio":
        refusal = audio_refusal(head)
        if refusal is None and max_audio_s is not None:
            claimed = flac_duration(head)
            if claimed is not None:
                refusal = length_refusal(claimed, size, max_audio_s)
        return refusal
    refusal = image_refusal(head)
    if refusal is None and (dimensions := header_dimensions(head)) is not None:
        refusal = image_size_refusal(*dimensions, size)
    return refusal
