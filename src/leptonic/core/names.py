"""Names of workspaces, datasets and models: short, lowercase, path-safe."""

from __future__ import annotations

import re

from leptonic.errors import InvalidName

__all__ = ["NAME_PATTERN", "validate_name"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_name(name: object, kind: str = "name") -> str:
    """Return ``name`` if it is a valid object name, else raise :class:`InvalidName`.

    A valid name is 1-63 characters of lowercase letters, digits, ``-`` and ``_``,
    starting with a letter or digit. This keeps names safe as path segments and
    URL parts: no ``..``, slashes, dots, spaces or control characters.

    Examples
    --------
    >>> validate_name("credit-risk", "workspace")
    'credit-risk'
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        suggestion = ""
        if isinstance(name, str):
            cleaned = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:63]
            if cleaned and NAME_PATTERN.fullmatch(cleaned):
                suggestion = f" (for example {cleaned!r})"
        raise InvalidName(
            f"invalid {kind} name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            f"starting with a letter or digit{suggestion}",
            field=kind,
        )
    return name
