"""Content sniffing: every accepted container is recognised from its first bytes, whatever its
name; images and documents sent as audio (and the reverse), and images, audio files and
documents sent as the source video, are ``unsupported_format``."""

from __future__ import annotations

import pytest

from modal_service.sniff import audio_refusal, image_refusal, sniff, video_refusal

AUDIO_HEADS = {
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "rf64": b"RF64\xff\xff\xff\xffWAVEds64",
    "bw64": b"BW64\xff\xff\xff\xffWAVEds64",
    "aiff": b"FORM\x00\x00\x10\x00AIFFCOMM",
    "aifc": b"FORM\x00\x00\x10\x00AIFCFVER",
    "caf": b"caff\x00\x01\x00\x00desc",
    "flac": b"fLaC\x00\x00\x00\x22",
    "ogg": b"OggS\x00\x02\x00\x00",
    "mp3-id3": b"ID3\x04\x00\x00\x00\x00\x10\x00",
    "mp3-frames": b"\xff\xfb\x90\x64\x00",
    "mp2-frames": b"\xff\xfd\x90\x64\x00",
    "adts-aac": b"\xff\xf1\x50\x80\x02\x1f\xfc",
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42",
    "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    "mov-moov": b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm",
    "amr": b"#!AMR\n\x3c",
}
IMAGE_HEADS = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "gif": b"GIF89a\x01\x00",
    "bmp": b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00",
    "tiff-le": b"II*\x00\x08\x00\x00\x00",
    "tiff-be": b"MM\x00*\x00\x00\x00\x08",
    "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
}
DOCUMENTS = {
    "pdf": b"%PDF-1.7\n",
    "svg": b"<svg xmlns='http://www.w3.org/2000/svg'>",
    "svg-xml": b"<?xml version='1.0'?>\n<!-- drawn -->\n<svg>",
    "psd": b"8BPS\x00\x01",
    "midi": b"MThd\x00\x00\x00\x06",
    "html": b"<!DOCTYPE html><html>",
}


@pytest.mark.parametrize("name", AUDIO_HEADS)
def test_audio_containers_pass_as_audio_and_never_as_images(name: str) -> None:
    head = AUDIO_HEADS[name]
    assert sniff(head).family in ("audio", "video")
    assert audio_refusal(head) is None
    assert image_refusal(head)[0] == "unsupported_format"


@pytest.mark.parametrize("name", IMAGE_HEADS)
def test_images_pass_as_images_and_never_as_audio(name: str) -> None:
    head = IMAGE_HEADS[name]
    assert sniff(head).family == "image"
    assert image_refusal(head) is None
    assert audio_refusal(head)[0] == "unsupported_format"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_documents_are_unsupported_for_both(name: str) -> None:
    head = DOCUMENTS[name]
    assert audio_refusal(head)[0] == "unsupported_format"
    assert image_refusal(head)[0] == "unsupported_format"


@pytest.mark.parametrize(
    "head", [b"", b"hello world", b"\x00" * 64, b"RIFF\x00\x00\x00\x00JUNK", b"BM not a bitmap"]
)
def test_unrecognised_bytes_are_invalid(head: bytes) -> None:
    assert audio_refusal(head)[0] == "audio_invalid"
    assert image_refusal(head)[0] == "image_invalid"


def test_refusals_say_what_is_accepted() -> None:
    _code, reason = audio_refusal(DOCUMENTS["pdf"])
    assert "pdf" in reason
    assert "WebM" in reason
    assert "HEIC" in image_refusal(b"hello")[1]


VIDEO_HEADS = {
    "mp4": (AUDIO_HEADS["mp4"], "mp4"),
    "mov-qt-brand": (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "mov"),
    "mov-wide-first": (AUDIO_HEADS["mov-moov"], "mov"),
    "mov-moov-first": (b"\x00\x00\x01\x00moov\x00\x00\x00\x6cmvhd", "mov"),
    "mov-mdat-first": (b"\x00\x01\x00\x00mdat\x00\x00", "mov"),
    "webm": (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87", "webm"),
    "mkv": (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "matroska"),
}


@pytest.mark.parametrize("name", VIDEO_HEADS)
def test_video_containers_pass_as_videos_by_their_names(name: str) -> None:
    head, expected = VIDEO_HEADS[name]
    assert sniff(head) == ("video", expected)
    assert video_refusal(head) is None
    assert audio_refusal(head) is None  # a video's sound track is an audio input


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (IMAGE_HEADS["png"], "an image (png), not a video"),
        (IMAGE_HEADS["heic"], "an image (heif), not a video"),
        (AUDIO_HEADS["wav"], "audio (wav), not a video"),
        (AUDIO_HEADS["m4a"], "audio (m4a), not a video"),
        (AUDIO_HEADS["flac"], "audio (flac), not a video"),
        (DOCUMENTS["pdf"], "a document (pdf), not a video"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video (avi); send MP4, MOV, WebM or MKV"),
    ],
)
def test_what_is_not_a_source_video_is_named(head: bytes, what: str) -> None:
    code, reason = video_refusal(head)
    assert code == "unsupported_format"
    assert reason.startswith(f"is {what}")


@pytest.mark.parametrize("head", [b"", b"hello world", b"\x00" * 64])
def test_unrecognised_bytes_are_an_invalid_video(head: bytes) -> None:
    assert video_refusal(head)[0] == "video_invalid"
