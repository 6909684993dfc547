"""API errors as Kubernetes `metav1.Status` (research/kubectl-api.md §9.1).

Every failure of the Kubernetes API is an `APIError`; the REST server writes `status()` as
the body with `code` as the HTTP status, the gRPC resource API carries the same JSON. kubectl
builds its one-line messages from `reason`, `message` and, for 422, from `details.kind`,
`details.name` and `details.causes`.
"""

from __future__ import annotations

from typing import Any

from .resources import Resource

Cause = dict[str, str]  # {"reason": "FieldValueInvalid", "message": "...", "field": "spec.x"}


class APIError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"APIError({self.code}, {self.reason!r}, {self.message!r})"


def _details(res: Resource | None, name: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name} if name else {}
    if res is not None:
        if res.group:
            d["group"] = res.group
        d["kind"] = res.plural
    d.update(extra)
    return d


def not_found(res: Resource, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{res.group_resource} "{name}" not found', details=_details(res, name)
    )


def namespace_not_found(namespace: str) -> APIError:
    return APIError(
        404,
        "NotFound",
        f'namespaces "{namespace}" not found',
        details={"name": namespace, "kind": "namespaces"},
    )


def already_exists(res: Resource, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{res.group_resource} "{name}" already exists',
        details=_details(res, name),
    )


def conflict(res: Resource, name: str, why: str | None = None) -> APIError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {res.group_resource} "{name}": {why}',
        details=_details(res, name),
    )


def invalid(res: Resource, name: str, causes: list[Cause]) -> APIError:
    """422: kubectl prints `The <Kind> "<name>" is invalid: <field>: <message>` per cause."""
    qualified = f"{res.kind}.{res.group}" if res.group else res.kind
    parts = "; ".join(
        f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes
    )
    n = len(causes)
    if n > 1:
        parts = f"[{parts}]"
    details: dict[str, Any] = {"name": name, "kind": res.kind, "causes": causes}
    if res.group:
        details["group"] = res.group
    return APIError(422, "Invalid", f'{qualified} "{name}" is invalid: {parts}', details=details)


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "message": message, "field": field}


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def gone(message: str) -> APIError:
    """410: the requested resourceVersion is compacted (watch or list)."""
    return APIError(410, "Expired", message)


def too_large(message: str) -> APIError:
    return APIError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(message: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", message)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def unavailable(message: str, retry_after: int = 1) -> APIError:
    """503 with Retry-After: nothing was proposed, any verb may be retried."""
    return APIError(503, "ServiceUnavailable", message, retry_after=retry_after)


def outcome_unknown(message: str) -> APIError:
    """504 without Retry-After: a write may or may not have been applied."""
    causes = [cause("", message, "OutcomeUnknown")]
    return APIError(504, "Timeout", message, details={"causes": causes})
