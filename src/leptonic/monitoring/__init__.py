"""Monitoring: drift and performance of a served model against its training baseline.

The pure computation layer, independent of storage and HTTP: it reads lists
of logged predictions and outcomes and returns reports, alerts and plots.

- :mod:`~leptonic.monitoring.baseline`: :class:`BaselineProfile`, the
  training-time bins and shares of each input and of the score (JSON, versioned).
- :mod:`~leptonic.monitoring.drift`: the population stability index per input
  and for the score, over a batch or per time window.
- :mod:`~leptonic.monitoring.performance`: AUC, KS and bad rates on outcomes,
  per window and decision band.
- :mod:`~leptonic.monitoring.alerts`: PSI and AUC-drop rules with minimum
  sample sizes, and a webhook notifier.
- :mod:`~leptonic.monitoring.text`: a text classifier's baseline (label shares,
  confidence, text length) and its logged answers in the same terms.
- :mod:`~leptonic.monitoring.recalibrate`: new band edges for a target
  approval rate or bad rate.
- :mod:`~leptonic.monitoring.plots`: plots and the self-contained HTML report.
"""

from __future__ import annotations

from leptonic.monitoring.alerts import (
    AlertRules,
    AucDropRule,
    PsiRule,
    WebhookNotifier,
    alert_payload,
    check_webhook_url,
    evaluate_rules,
    score_subject,
)
from leptonic.monitoring.baseline import (
    BASELINE_ARTIFACT,
    BASELINE_FORMAT,
    BASELINE_ROWS,
    DEFAULT_EPSILON,
    EDGE_TOLERANCE,
    BaselineProfile,
    FeatureBins,
)
from leptonic.monitoring.drift import (
    DriftReport,
    DriftSeries,
    FeatureDrift,
    drift_over_time,
    drift_report,
    psi,
)
from leptonic.monitoring.performance import (
    BAND_ORDER,
    BandPerformance,
    Outcome,
    PerformanceReport,
    PerformanceWindow,
    outcomes_from_labelled,
    performance_report,
)
from leptonic.monitoring.plots import (
    band_bad_rate_plot,
    distribution_plot,
    monitoring_report_html,
    performance_plot,
    psi_plot,
)
from leptonic.monitoring.recalibrate import (
    Recalibration,
    thresholds_for_approval_rate,
    thresholds_for_bad_rate,
)
from leptonic.monitoring.text import (
    MAX_LABELS,
    TEXT_ADVICE,
    TEXT_BASELINE_ROWS,
    TEXT_INPUTS,
    TEXT_SUBJECTS,
    labels_given,
    text_baseline,
    text_profile,
    text_records,
)

__all__ = [
    "BAND_ORDER",
    "BASELINE_ARTIFACT",
    "BASELINE_FORMAT",
    "BASELINE_ROWS",
    "DEFAULT_EPSILON",
    "EDGE_TOLERANCE",
    "MAX_LABELS",
    "TEXT_ADVICE",
    "TEXT_BASELINE_ROWS",
    "TEXT_INPUTS",
    "TEXT_SUBJECTS",
    "AlertRules",
    "AucDropRule",
    "BandPerformance",
    "BaselineProfile",
    "DriftReport",
    "DriftSeries",
    "FeatureBins",
    "FeatureDrift",
    "Outcome",
    "PerformanceReport",
    "PerformanceWindow",
    "PsiRule",
    "Recalibration",
    "WebhookNotifier",
    "alert_payload",
    "band_bad_rate_plot",
    "check_webhook_url",
    "distribution_plot",
    "drift_over_time",
    "drift_report",
    "evaluate_rules",
    "labels_given",
    "monitoring_report_html",
    "outcomes_from_labelled",
    "performance_plot",
    "performance_report",
    "psi",
    "psi_plot",
    "score_subject",
    "text_baseline",
    "text_profile",
    "text_records",
    "thresholds_for_approval_rate",
    "thresholds_for_bad_rate",
]
