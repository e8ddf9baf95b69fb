"""The outcome of a decision policy for one record.

A :class:`Decision` names the decision, what made it (a band, or the rule
and the field it tested), the scorecard points of a ``"points"`` policy, and
whether the decision is adverse, i.e. owes the applicant reason codes.
Decisions compare by value; a probability policy returns shared instances.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Decision"]


class Decision:
    """The outcome of :meth:`~leptonic.serving.policy.DecisionPolicy.decide`.

    Attributes
    ----------
    decision : str
        The decision name.
    band : int or None
        Index of the band that decided; ``None`` when a rule did.
    rule : str or None
        The ``reason`` of the rule that decided; ``None`` when a band did.
    rule_field : str or None
        The field that rule tested.
    rule_index : int or None
        The rule's position in ``rules``.
    points : float or None
        Scorecard points of the score (``"points"`` policies, when a score
        was given); ``None`` otherwise.
    adverse : bool
        Whether this decision owes reason codes.
    """

    __slots__ = ("adverse", "band", "decision", "points", "rule", "rule_field", "rule_index")

    def __init__(
        self,
        decision: str,
        band: int | None,
        rule: str | None,
        rule_field: str | None,
        rule_index: int | None,
        points: float | None,
        adverse: bool,
    ) -> None:
        self.decision = decision
        self.band = band
        self.rule = rule
        self.rule_field = rule_field
        self.rule_index = rule_index
        self.points = points
        self.adverse = adverse

    def _with_points(self, points: float) -> Decision:
        return Decision(
            self.decision,
            self.band,
            self.rule,
            self.rule_field,
            self.rule_index,
            points,
            self.adverse,
        )

    def to_dict(self) -> dict[str, Any]:
        """The attributes as a dict (for logs and tests)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        how = f"band={self.band}" if self.rule is None else f"rule={self.rule_index}"
        points = "" if self.points is None else f", points={self.points:.1f}"
        return f"Decision({self.decision!r}, {how}{points})"
