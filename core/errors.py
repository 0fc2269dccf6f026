"""Domain errors raised by services. The API turns each into the one error body shape with its
status code; the CLI prints the message. Messages name what is wrong and what to do."""


class LetheError(Exception):
    status_code = 400
    code = "invalid"

    # Keys the API adds to its error object beside code, message and fields (see LessSafeTarget).
    extra = {}

    def __init__(self, message, *, fields=None):
        super().__init__(message)
        self.fields = fields or {}


class ValidationFailed(LetheError):
    pass


class NotFound(LetheError):
    status_code = 404
    code = "not_found"


class Forbidden(LetheError):
    status_code = 403
    code = "permission_denied"


class Conflict(LetheError):
    """The request clashes with the current state (duplicate content, a name in use)."""

    status_code = 409
    code = "conflict"


class LessSafeTarget(Conflict):
    """A label move to a version the latest evaluation between the two measured less safe, without
    an explicit acknowledgement. The API's error object also carries ``warning`` (what was
    measured) and ``impact`` (versions.selectors.label_move_impact)."""

    code = "less_safe_target"

    def __init__(self, message, *, warning, impact):
        super().__init__(message, fields={"acknowledge_less_safe": [warning]})
        self.warning, self.impact = warning, impact
        self.extra = {"warning": warning, "impact": impact}


class RetryableConflict(Conflict):
    """A concurrent write won the race; the same request may simply be sent again."""

    code = "retry"


class UnsafeInput(LetheError):
    """Pickled weights, path traversal, lying headers: refused, nothing stored."""

    code = "unsafe_input"


class InsufficientStorage(LetheError):
    """The disk (or quota) of the artifact store or the spool folder is full: nothing was stored."""

    status_code = 507
    code = "insufficient_storage"

    @classmethod
    def disk_full(cls):
        return cls("The server has no space left to store this upload; nothing was stored. Ask an operator to free space, then retry.")


class TooLarge(LetheError):
    status_code = 413
    code = "too_large"

    @classmethod
    def request_body(cls):
        """A request body over DATA_UPLOAD_MAX_MEMORY_SIZE, however it was found out."""
        from django.conf import settings

        return cls(
            f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (LETHE_MAX_REQUEST_BODY_BYTES); upload large files as multipart file parts."
        )
