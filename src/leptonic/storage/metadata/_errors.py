"""Errors that every metadata store raises alike, for users, tokens and jobs.

Kept in one place so that the memory and SQL stores say the same thing.
"""

from __future__ import annotations

from leptonic.errors import AlreadyExists, NotFound

__all__ = [
    "job_exists",
    "job_not_found",
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
        f"API token {token_id!r} not found; list a user's tokens with "
        "`leptonic tokens list --user NAME`",
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
