"""Errors that every metadata store raises alike, for users, tokens, jobs and endpoints.

Kept in one place so that the memory and SQL stores say the same thing.
"""

from __future__ import annotations

from leptonic.errors import AlreadyExists, Conflict, NotFound

__all__ = [
    "alert_not_found",
    "endpoint_exists",
    "endpoint_not_found",
    "feedback_without_prediction",
    "job_exists",
    "job_not_found",
    "policy_version_not_found",
    "prediction_exists",
    "prediction_not_found",
    "revision_conflict",
    "routed_version_not_found",
    "token_exists",
    "token_hash_taken",
    "token_not_found",
    "user_exists",
    "user_not_found",
]


def user_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"user {name!r} already exists; pick another name", field="name")


def user_not_found(name: str) -> NotFound:
    return NotFound(
        f"user {name!r} not found; create it with `leptonic users create {name}`", field="user"
    )


def token_exists(token_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"API token {token_id!r} already exists; give the new token another id", field="id"
    )


def token_hash_taken() -> AlreadyExists:
    # The hash is not repeated: it stands for a secret.
    return AlreadyExists(
        "an API token with the same secret already exists; generate a new secret",
        field="token_hash",
    )


def token_not_found(token_id: str | None = None) -> NotFound:
    """NotFound for a token looked up by id, or by hash when ``token_id`` is None.

    A hash is never put in the message: it stands for a secret.
    """
    if token_id is None:
        return NotFound(
            "no API token matches the one given: it is mistyped or was deleted; "
            "create a new one with `leptonic tokens create`",
            field="token",
        )
    return NotFound(
        f"API token {token_id!r} not found; list a user's tokens with `leptonic tokens list USER`",
        field="token",
    )


def job_exists(job_id: str) -> AlreadyExists:
    return AlreadyExists(f"job {job_id!r} already exists; give the new job another id", field="id")


def job_not_found(workspace: str, job_id: str) -> NotFound:
    return NotFound(
        f"job {job_id!r} not found in workspace {workspace!r}; "
        f"list jobs with `leptonic jobs list --workspace {workspace}`",
        field="job",
    )


def endpoint_exists(workspace: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f"endpoint {name!r} already exists in workspace {workspace!r}; pick another name "
        "or change the existing endpoint",
        field="name",
    )


def endpoint_not_found(workspace: str, name: str) -> NotFound:
    return NotFound(
        f"endpoint {name!r} not found in workspace {workspace!r}; check the name against "
        "the workspace's endpoints, or create it first",
        field="endpoint",
    )


def routed_version_not_found(
    workspace: str, endpoint: str, model: str, version: int, field: str
) -> NotFound:
    return NotFound(
        f"endpoint {endpoint!r} would serve model {model!r} v{version}, which does not exist "
        f"in workspace {workspace!r}; register that version first or name an existing one",
        field=field,
    )


def revision_conflict(workspace: str, name: str, stored: int, expected: int) -> Conflict:
    return Conflict(
        f"endpoint {name!r} in workspace {workspace!r} is at revision {stored}, not "
        f"{expected}: it was changed meanwhile; read it again and redo the change",
        field="expected_revision",
    )


def policy_version_not_found(workspace: str, endpoint: str, version: object) -> NotFound:
    return NotFound(
        f"endpoint {endpoint!r} in workspace {workspace!r} has no policy version {version}; "
        "list its policy versions to pick one",
        field="policy_version",
    )


def prediction_exists(workspace: str, endpoint: str, request_id: str, route: str) -> AlreadyExists:
    return AlreadyExists(
        f"a {route} prediction for request {request_id!r} is already logged for endpoint "
        f"{endpoint!r} in workspace {workspace!r}; give each request its own id "
        "(nothing of the batch was written)",
        field="request_id",
    )


def prediction_not_found(workspace: str, endpoint: str, request_id: str, route: str) -> NotFound:
    return NotFound(
        f"no {route} prediction for request {request_id!r} is logged for endpoint "
        f"{endpoint!r} in workspace {workspace!r}; check the request id",
        field="request_id",
    )


def feedback_without_prediction(workspace: str, endpoint: str, request_id: str) -> NotFound:
    return NotFound(
        f"feedback names request {request_id!r}, but endpoint {endpoint!r} in workspace "
        f"{workspace!r} logged no live prediction for it; send outcomes only for logged "
        "requests (nothing of the batch was written)",
        field="request_id",
    )


def alert_not_found(workspace: str, alert_id: object) -> NotFound:
    return NotFound(
        f"alert {alert_id!r} not found in workspace {workspace!r}; list the workspace's "
        "alerts to find its id",
        field="alert",
    )
