"""Domain errors raised by services. The API turns each into the one error body shape with its
status code; the CLI prints the message. Messages name what is wrong and what to do."""


class LetheError(Exception):
    status_code = 400
    code = "invalid"

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


class RetryableConflict(Conflict):
    """A concurrent write won the race; the same request may simply be sent again."""

    code = "retry"


class UnsafeInput(LetheError):
    """Pickled weights, path traversal, lying headers: refused, nothing stored."""

    code = "unsafe_input"


class TooLarge(LetheError):
    status_code = 413
    code = "too_large"
