"""Streaming transfers through pre-signed S3 URLs, with size limits, retries and expiry detection.

The worker holds no AWS credential: a GET URL lets it read one object, a PUT URL lets it write
one object with one content type. S3 answers errors as XML (``<Code>``/``<Message>``); this
module tells three kinds apart because the job reacts differently to each:

* expired (AccessDenied "Request has expired", or RequestTimeTooSkewed / "expired" as some S3
  implementations say): ask once for fresh URLs, then retry;
* refused for good (a tampered or wrong signature, 404, other 4xx): fail, a retry cannot help;
* transient (5xx, 429, a timeout, a connection dropped or a body cut short): retry with backoff.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from modal_service.contracts import ErrorCode
from modal_service.worker.control import JobControl
from modal_service.worker.errors import UrlExpiredError, WorkerError

logger = logging.getLogger(__name__)
# httpx logs every request line, URL included, at INFO. A pre-signed URL is a bearer credential
# for its object, so those lines are kept out of the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

CHUNK_BYTES = 1024 * 1024
_MAX_ERROR_BODY = 4096
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_EXPIRED_CODES = {"RequestTimeTooSkewed", "ExpiredToken", "TokenRefreshRequired"}

T = TypeVar("T")

ByteProgress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a transfer runs."""


@dataclass(frozen=True)
class TransferPolicy:
    attempts: int = 3
    backoff_s: float = 1.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0


@dataclass(frozen=True)
class S3Refusal:
    """What an S3 error response said, reduced to what the worker needs."""

    status: int
    code: str
    message: str

    @property
    def expired(self) -> bool:
        if self.status != 403:
            return False
        return self.code in _EXPIRED_CODES or "expired" in self.message.lower()

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.status in (408, 429) or self.code == "BadDigest"

    def describe(self) -> str:
        return f"HTTP {self.status} {self.code or 'error'}"


def parse_refusal(status: int, body: bytes) -> S3Refusal:
    text = body[:_MAX_ERROR_BODY].decode("utf-8", errors="replace")
    code = _CODE.search(text)
    message = _MESSAGE.search(text)
    return S3Refusal(
        status=status,
        code=code.group(1) if code else "",
        message=message.group(1) if message else "",
    )


class _Transient(Exception):
    """One attempt failed in a way that a later attempt may not."""


def _timeout(policy: TransferPolicy, control: JobControl) -> httpx.Timeout:
    return httpx.Timeout(
        control.timeout(policy.read_timeout_s),
        connect=control.timeout(policy.connect_timeout_s),
    )


def _with_retries(
    attempt: Callable[[], T],
    *,
    policy: TransferPolicy,
    control: JobControl,
    on_exhausted: Callable[[str], WorkerError],
) -> T:
    last = "no attempt made"
    for number in range(1, policy.attempts + 1):
        control.check()
        try:
            return attempt()
        except _Transient as transient:
            last = str(transient)
            logger.warning("transfer attempt %d/%d failed: %s", number, policy.attempts, last)
        except (httpx.TimeoutException, httpx.TransportError) as error:
            # Timeouts, refused connections and bodies cut short (RemoteProtocolError).
            last = type(error).__name__
            logger.warning("transfer attempt %d/%d failed: %s", number, policy.attempts, last)
        if number < policy.attempts:
            control.sleep(policy.backoff_s * 2 ** (number - 1))
    control.check()
    raise on_exhausted(last)


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    what: str,
    max_bytes: int,
    policy: TransferPolicy,
    control: JobControl,
    progress: ByteProgress | None = None,
) -> int:
    """Stream ``url`` into ``dest`` (replacing it), refusing more than ``max_bytes``.

    Returns the number of bytes written. Raises :class:`UrlExpiredError` when the URL expired
    and :class:`WorkerError` (``input_unreadable`` / ``input_too_large``) otherwise.
    """

    def attempt() -> int:
        with client.stream("GET", url, timeout=_timeout(policy, control)) as response:
            if response.status_code != 200:
                refusal = parse_refusal(response.status_code, response.read())
                if refusal.expired:
                    raise UrlExpiredError(what)
                if refusal.transient:
                    raise _Transient(refusal.describe())
                raise WorkerError(
                    ErrorCode.INPUT_UNREADABLE,
                    f"{what} could not be read: {refusal.describe()}",
                    retryable=False,
                )
            declared = _declared_length(response)
            if declared is not None and declared > max_bytes:
                raise _too_large(what, max_bytes)
            written = 0
            with dest.open("wb") as sink:
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > max_bytes:
                        raise _too_large(what, max_bytes)
                    sink.write(chunk)
                    if progress is not None:
                        progress(written, declared or 0)
                    control.check()
            if declared is not None and written != declared:
                raise _Transient(f"{what}: got {written} of {declared} bytes")
            return written

    return _with_retries(
        attempt,
        policy=policy,
        control=control,
        on_exhausted=lambda last: WorkerError(
            ErrorCode.INPUT_UNREADABLE,
            f"{what} could not be read after {policy.attempts} attempts ({last})",
            retryable=True,
        ),
    )


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _too_large(what: str, max_bytes: int) -> WorkerError:
    return WorkerError(
        ErrorCode.INPUT_TOO_LARGE, f"{what} is larger than {max_bytes} bytes", retryable=False
    )


@dataclass(frozen=True)
class FileDigest:
    size: int
    md5_hex: str
    sha256_hex: str


def digest_file(path: Path) -> FileDigest:
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return FileDigest(size=size, md5_hex=md5.hexdigest(), sha256_hex=sha256.hexdigest())


def upload(
    client: httpx.Client,
    url: str,
    source: Path,
    *,
    content_type: str,
    digest: FileDigest,
    policy: TransferPolicy,
    control: JobControl,
    progress: ByteProgress | None = None,
) -> None:
    """Stream ``source`` to a pre-signed PUT URL and verify what S3 stored.

    The request carries the content type the URL was signed with, an explicit length (S3 does
    not take chunked uploads on pre-signed PUTs) and ``Content-MD5``, so S3 itself refuses a body
    damaged on the way (``BadDigest``). When the answer's ETag is a plain MD5 (single-part upload
    without SSE-KMS) it is compared as well.
    """
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(digest.size),
        "Content-MD5": base64.b64encode(bytes.fromhex(digest.md5_hex)).decode("ascii"),
    }

    def body() -> Iterator[bytes]:
        sent = 0
        with source.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                sent += len(chunk)
                yield chunk
                if progress is not None:
                    progress(sent, digest.size)

    def attempt() -> None:
        response = client.put(
            url, content=body(), headers=headers, timeout=_timeout(policy, control)
        )
        if response.status_code not in (200, 201, 204):
            refusal = parse_refusal(response.status_code, response.content)
            if refusal.expired:
                raise UrlExpiredError("the output")
            if refusal.transient:
                raise _Transient(refusal.describe())
            raise WorkerError(
                ErrorCode.UPLOAD_FAILED,
                f"the output upload was refused: {refusal.describe()}",
                retryable=False,
            )
        etag = response.headers.get("etag", "").strip('"').lower()
        if re.fullmatch(r"[0-9a-f]{32}", etag) and etag != digest.md5_hex:
            raise _Transient("the stored object's ETag does not match the MP4's MD5")

    _with_retries(
        attempt,
        policy=policy,
        control=control,
        on_exhausted=lambda last: WorkerError(
            ErrorCode.UPLOAD_FAILED,
            f"the output could not be uploaded after {policy.attempts} attempts ({last})",
            retryable=True,
        ),
    )
