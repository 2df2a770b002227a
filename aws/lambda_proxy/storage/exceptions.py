"""Errors of the storage feature (about what the caller asked for, and S3 signing)."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import (
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    UpstreamError,
)


class S3UrlInvalidError(BadRequestError):
    """Not a well-formed ``s3://bucket/key`` URL."""

    code = "s3_url_invalid"


class LocationForbiddenError(ForbiddenError):
    """The tenant may not read (or write) this location."""

    code = "s3_location_forbidden"


class InputMissingError(BadRequestError):
    """An input object does not exist (or this service may not see it)."""

    code = "input_not_found"


class InputRefusedError(BadRequestError):
    """An input object exists but its size or content is refused (``code`` says which:
    ``input_size_refused``, ``unsupported_format``, ``audio_invalid``, ``image_invalid``)."""

    code = "input_refused"


class OutputExistsError(ConflictError):
    """The output key already holds an object and overwriting was not asked for."""

    code = "output_exists"


class AccelerationUnavailableError(ConfigurationError):
    """The deployment asks for S3 Transfer Acceleration where it cannot be signed (a custom S3
    endpoint such as the local emulator's); a configuration error, never the caller's."""

    code = "s3_acceleration_unavailable"


class SigningUnavailableError(UpstreamError):
    """The signing credentials are about to expire; pre-signed URLs would die at once."""

    code = "signing_credentials_expiring"
