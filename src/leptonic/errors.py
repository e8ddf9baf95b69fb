"""The Leptonic error tree.

Every error inherits from :class:`LeptonicError` and from the closest built-in
exception, so callers may catch either. Each message names the object, the
bad value and what to do about it. Only ``leptonic.api`` maps these errors to
HTTP statuses.

::

    LeptonicError
    ├── ConfigError (ValueError)
    │   └── UnknownBackend
    ├── InvalidInput (ValueError)
    │   ├── InvalidName
    │   ├── DataError            bad or unreadable input data
    │   ├── SchemaError          a schema or contract that does not hold
    │   └── TargetError          a target column unfit for the task
    ├── NotFound (KeyError)
    ├── AlreadyExists (ValueError)
    ├── Conflict (RuntimeError)  a state transition that is not allowed
    ├── Cancelled (RuntimeError) work stopped because someone cancelled it
    ├── Unauthenticated (PermissionError)  no valid credentials
    ├── PermissionDenied (PermissionError) a role too low for the action
    ├── NotFitted (ValueError, AttributeError)
    ├── UnsafeArtifact (ValueError)
    ├── StoreError (RuntimeError)
    └── MissingExtra (ImportError)
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "ConfigError",
    "Conflict",
    "DataError",
    "InvalidInput",
    "InvalidName",
    "LeptonicError",
    "MissingExtra",
    "NotFitted",
    "NotFound",
    "PermissionDenied",
    "SchemaError",
    "StoreError",
    "TargetError",
    "Unauthenticated",
    "UnknownBackend",
    "UnsafeArtifact",
]


class LeptonicError(Exception):
    """Base of every error Leptonic raises on purpose.

    Parameters
    ----------
    message
        What went wrong and what to do about it.
    field
        The input field at fault, when there is one (a column, an argument).
    """

    code = "leptonic_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ConfigError(LeptonicError, ValueError):
    """A setting or environment variable has a value that cannot be used."""

    code = "config_error"


class UnknownBackend(ConfigError):
    """A URI names a scheme no backend is registered for."""

    code = "unknown_backend"


class InvalidInput(LeptonicError, ValueError):
    """An argument or input record is not acceptable."""

    code = "invalid_input"


class InvalidName(InvalidInput):
    """A workspace, dataset or model name breaks the naming rules."""

    code = "invalid_name"


class DataError(InvalidInput):
    """A data file is empty, unreadable or malformed."""

    code = "data_error"


class SchemaError(InvalidInput):
    """A schema, column role or contract file does not hold."""

    code = "schema_error"


class TargetError(InvalidInput):
    """The target column is missing, constant or unfit for the task."""

    code = "target_error"


class NotFound(LeptonicError, KeyError):
    """The object asked for does not exist (or is not visible to the caller)."""

    code = "not_found"


class AlreadyExists(LeptonicError, ValueError):
    """An object with that name already exists."""

    code = "already_exists"


class Conflict(LeptonicError, RuntimeError):
    """The operation is not allowed in the object's current state."""

    code = "conflict"


class Cancelled(LeptonicError, RuntimeError):
    """Work was stopped on request (a cancelled training job)."""

    code = "cancelled"


class Unauthenticated(LeptonicError, PermissionError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    code = "unauthenticated"


class PermissionDenied(LeptonicError, PermissionError):
    """The caller's role does not allow the action."""

    code = "permission_denied"


class NotFitted(LeptonicError, ValueError, AttributeError):
    """An estimator or transformer was used before ``fit``."""

    code = "not_fitted"


class UnsafeArtifact(LeptonicError, ValueError):
    """An artifact failed its integrity check or holds untrusted types."""

    code = "unsafe_artifact"


class StoreError(LeptonicError, RuntimeError):
    """A storage backend failed (database schema out of date, disk full...)."""

    code = "store_error"


class MissingExtra(LeptonicError, ImportError):
    """An optional dependency is not installed."""

    code = "missing_extra"

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed; "
            f"install it with: pip install 'leptonic[{extra}]'"
        )
        self.package = package
        self.extra = extra
        self.purpose = purpose

    def __reduce__(self) -> tuple[type[MissingExtra], tuple[str, str, str]]:
        # rebuilt from its own arguments when it crosses processes
        return (type(self), (self.package, self.extra, self.purpose))
