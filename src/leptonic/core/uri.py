"""References to platform objects, used for lineage: ``leptonic://ws/kind/name[/version]``."""

from __future__ import annotations

from dataclasses import dataclass

from leptonic.errors import InvalidInput

__all__ = ["KINDS", "ObjectRef"]

KINDS = ("dataset", "run", "model", "endpoint")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """A reference to one object (optionally one version of it) in a workspace.

    Examples
    --------
    >>> str(ObjectRef("credit", "dataset", "applicants", 3))
    'leptonic://credit/dataset/applicants/3'
    >>> ObjectRef.parse("leptonic://credit/run/4f2a")
    ObjectRef(workspace='credit', kind='run', name='4f2a', version=None)
    """

    workspace: str
    kind: str
    name: str
    version: int | None = None

    def __str__(self) -> str:
        tail = "" if self.version is None else f"/{self.version}"
        return f"leptonic://{self.workspace}/{self.kind}/{self.name}{tail}"

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        prefix = "leptonic://"
        parts = text[len(prefix) :].split("/") if text.startswith(prefix) else []
        if len(parts) not in (3, 4) or parts[1] not in KINDS or not all(parts):
            raise InvalidInput(
                f"invalid object reference {text!r}: expected "
                f"'leptonic://<workspace>/<{'|'.join(KINDS)}>/<name>[/<version>]'",
                field="ref",
            )
        version = None
        if len(parts) == 4:
            # ASCII digits only ("²" is a digit to str.isdigit) and a version's size
            if not (parts[3].isascii() and parts[3].isdigit() and len(parts[3]) <= 18):
                shown = text if len(text) <= 120 else text[:120] + "…"
                raise InvalidInput(
                    f"invalid version in {shown!r}: expected a whole number such as "
                    f"'leptonic://{parts[0]}/{parts[1]}/{parts[2]}/3'",
                    field="ref",
                )
            version = int(parts[3])
        return cls(parts[0], parts[1], parts[2], version)
