"""Domain errors of the application.

Every error carries a stable problem ``type`` (a URI relative to the API, served
as a short page at ``/problems/{slug}``), a ``title`` and an HTTP ``status``; the
API renders them as RFC 9457 ``application/problem+json`` in one handler, the
CLI prints them on one line.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SohoaError(Exception):
    """Base of all domain errors."""

    slug: ClassVar[str] = "error"
    title: ClassVar[str] = "Request failed"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @classmethod
    def type_uri(cls) -> str:
        """The stable problem type of this error."""
        return f"/problems/{cls.slug}"


# -- bad input ---------------------------------------------------------------------------
class BadInputError(SohoaError):
    """The uploaded file cannot be accepted; the reason is in ``detail``."""

    slug = "bad-input"
    title = "The file cannot be accepted"
    status = 422


class EmptyFileError(BadInputError):
    slug = "empty-file"
    title = "The file is empty"


class UnsupportedMediaTypeError(BadInputError):
    slug = "unsupported-media-type"
    title = "The file type is not supported"
    status = 415


class FileTooLargeError(BadInputError):
    slug = "file-too-large"
    title = "The file is larger than allowed"
    status = 413


class TooManyPagesError(BadInputError):
    slug = "too-many-pages"
    title = "The document has more pages than allowed"


class ImageTooLargeError(BadInputError):
    slug = "image-too-large"
    title = "The image has more pixels than allowed"


class CorruptFileError(BadInputError):
    slug = "corrupt-file"
    title = "The file is damaged or truncated"


class EncryptedFileError(BadInputError):
    slug = "encrypted-file"
    title = "The PDF is encrypted"


class UnsafeArchiveError(BadInputError):
    slug = "unsafe-archive"
    title = "The archive is unsafe to extract"


class UnreadablePdfError(BadInputError):
    """Verification: the file is not a PDF, is truncated, or is encrypted (label:
    "Không đọc được tệp")."""

    slug = "unreadable-pdf"
    title = "The file is not a readable PDF"


class InvalidPersonalIdError(BadInputError):
    slug = "invalid-personal-id"
    title = "The personal identification number is not valid"


class WebhookUrlNotAllowedError(BadInputError):
    """A subscriber URL whose host is not allow-listed (or not HTTPS, or malformed)."""

    slug = "webhook-url-not-allowed"
    title = "The webhook URL is not allowed"


# -- access ------------------------------------------------------------------------------
class NotAuthenticatedError(SohoaError):
    slug = "not-authenticated"
    title = "A valid key is required"
    status = 401


class InvalidCitizenTokenError(SohoaError):
    slug = "invalid-citizen-token"
    title = "A valid citizen identity token is required"
    status = 401


class ForbiddenError(SohoaError):
    slug = "forbidden"
    title = "This role may not do that"
    status = 403


class TooManyFailedAuthError(SohoaError):
    """Too many failed authentications from this client address or for this key prefix;
    ``Retry-After`` says when to try again."""

    slug = "too-many-failed-authentications"
    title = "Too many failed authentication attempts"
    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class NotFoundError(SohoaError):
    slug = "not-found"
    title = "Not found"
    status = 404


class ConflictError(SohoaError):
    slug = "conflict"
    title = "The document is not in a state that allows this"
    status = 409


class ReviewFirstError(ConflictError):
    """A document the pipeline was unsure of: a clerk reviews it before it is issued."""

    slug = "review-first"
    title = "The document must be reviewed by a clerk first"


class InvalidRequestError(SohoaError):
    """A request body that is well-formed but not acceptable (reason in ``detail``)."""

    slug = "invalid-request"
    title = "The request is not valid"
    status = 422


class InvalidCorrectionError(InvalidRequestError):
    """A clerk's correction that names an unknown type or field or holds a malformed value
    (``detail`` names the field, never repeats the value)."""

    slug = "invalid-correction"
    title = "The correction is not valid"


# -- infrastructure ----------------------------------------------------------------------
class ServiceUnavailableError(SohoaError):
    """Storage or database cannot take the request now; nothing was accepted."""

    slug = "service-unavailable"
    title = "The service cannot accept this now"
    status = 503


#: Every problem type, for the ``/problems/{slug}`` pages and the docs.
PROBLEM_TYPES: dict[str, type[SohoaError]] = {
    cls.slug: cls
    for cls in (
        SohoaError,
        BadInputError,
        EmptyFileError,
        UnsupportedMediaTypeError,
        FileTooLargeError,
        TooManyPagesError,
        ImageTooLargeError,
        CorruptFileError,
        EncryptedFileError,
        UnsafeArchiveError,
        InvalidPersonalIdError,
        WebhookUrlNotAllowedError,
        UnreadablePdfError,
        NotAuthenticatedError,
        InvalidCitizenTokenError,
        ForbiddenError,
        TooManyFailedAuthError,
        NotFoundError,
        ConflictError,
        ReviewFirstError,
        InvalidRequestError,
        InvalidCorrectionError,
        ServiceUnavailableError,
    )
}
