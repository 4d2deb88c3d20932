"""Domain errors. Interfaces map them to HTTP statuses and exit codes in one place."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "EditRefusedError",
    "ForbiddenError",
    "InputError",
    "NotFoundError",
    "NotInitializedError",
    "RateLimitedError",
    "StaleVersionError",
    "TonggeError",
    "UnavailableError",
    "ValidationFailedError",
]


class TonggeError(Exception):
    """Base class of every error the domain raises on purpose."""

    title = "Error"

    def __init__(self, message: str, *, rule: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its keyword-only fields (errors cross from batch worker
        # processes back to the server).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(kind: type[TonggeError], args: tuple[Any, ...], state: dict[str, Any]) -> TonggeError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class InputError(TonggeError):
    """The input cannot be used at all (unreadable file, unknown field, no CRS...)."""

    title = "Unusable input"


class NotFoundError(TonggeError):
    """A layer, level or unit that does not exist (or is not visible)."""

    title = "Not found"


class NotInitializedError(TonggeError):
    """The configured database does not exist yet (``tongge init`` creates it)."""

    title = "Not initialized"


class AuthenticationError(TonggeError):
    """No valid credential: missing, malformed, expired, revoked or wrong."""

    title = "Not authenticated"


class ForbiddenError(TonggeError):
    """The caller's role may not do this at all (regardless of jurisdiction)."""

    title = "Forbidden"


class RateLimitedError(TonggeError):
    """Too many requests from one caller; ``retry_after`` says when to try again."""

    title = "Too many requests"


class UnavailableError(TonggeError):
    """The service cannot do this now (saturated, or its database refuses writes).

    Not the caller's fault: ``retry_after``, when given, says when to try again.
    """

    title = "Service unavailable"


class ConflictError(TonggeError):
    """The request contradicts the stored state (e.g. a layer with other levels)."""

    title = "Conflict"


class ValidationFailedError(TonggeError):
    """Data was checked and has problems; ``report`` says which."""

    title = "Validation failed"

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


class EditRefusedError(TonggeError):
    """An edit operation that would break a rule; ``problems`` say where and why.

    Each problem (:class:`gis.validate.Problem`) names its rule (``crosses_parent``,
    ``cuts_building``, ``not_adjacent``, ``line_not_reaching_boundary``...), the
    units, a lon/lat on the fault, a message and the offending geometry.
    """

    title = "Edit refused"

    def __init__(self, message: str, *, problems: Any) -> None:
        super().__init__(message, rule=problems[0].rule if problems else None)
        self.problems = list(problems)


class StaleVersionError(TonggeError):
    """A change computed against unit versions that have changed since.

    ``codes`` names the units whose stored version is no longer the one the
    change was computed against.
    """

    title = "Precondition failed"

    def __init__(self, message: str, *, codes: Any) -> None:
        super().__init__(message, rule="stale_version")
        self.codes = list(codes)
