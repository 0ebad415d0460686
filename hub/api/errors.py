"""Errors a request can end in: each has a wire `code`; `http_status(code)` is its HTTP status."""

from __future__ import annotations


class HubError(Exception):
    """A request was refused; nothing was logged. `code` goes on the wire in the error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadRequest(HubError):
    """A field is missing, of the wrong type or out of bounds (the message says which)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_request", message)


class Forbidden(HubError):
    """The token's role (or department) may not do this."""

    def __init__(self, message: str) -> None:
        super().__init__("forbidden", message)


class UnknownType(HubError):
    """The message type is not in the table (deny by default)."""

    def __init__(self, mtype: object) -> None:
        super().__init__("unknown_type", f"unknown message type {mtype!r}")


class RateLimited(HubError):
    """Too many requests for this session or token; this one was not processed."""

    def __init__(self, message: str) -> None:
        super().__init__("rate_limited", message)


# Every code the hub sends, with the HTTP status REST answers it with (WebSocket: the code only).
STATUS: dict[str, int] = {
    "bad_json": 400, "bad_request": 400, "bad_frame": 400, "bad_version": 400,
    "unknown_type": 400, "unknown_field": 400, "bad_scope": 400,
    "no_token": 401, "bad_token": 401, "bad_signature": 401, "expired": 401,
    "not_yet_valid": 401, "wrong_operation": 401, "revoked": 401,
    "forbidden": 403, "bad_origin": 403, "quota_exceeded": 403, "not_targeted": 403,
    "not_found": 404, "unknown_command": 404, "unknown_target": 404, "not_participant": 404,
    "method_not_allowed": 405,
    "invalid_transition": 409, "operation_running": 409, "no_operation": 409, "duplicate": 409,
    "id_reused": 409, "not_required": 409,
    "too_large": 413, "unsupported_media_type": 415, "scoring_failed": 422,
    "rate_limited": 429,
    "internal_error": 500,  # a bug in the hub, never a refusal
    "log_unavailable": 503, "scoring_unavailable": 503, "video_unavailable": 503,
    "unreachable": 503,  # a town hub asked on request (link.status) is not linked or silent
    "callup_failed": 502,  # a town hub could not send the feed the city called up
}


def http_status(code: str) -> int:
    """The HTTP status for an error code (400 for a code not listed: still the client's)."""
    return STATUS.get(code, 400)
