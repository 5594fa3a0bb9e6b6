"""Streaming anomaly detection, forecasting, machine health and device trust grades.

Pure code: no I/O. See docs/ai.md for the detectors, the evaluation protocol and figures.
"""

from veriot.ai.alerts import (
    Alert,
    AlertEngine,
    ScoredReading,
    alert_from_json,
    alert_leaf,
    alert_to_json,
    parse_alert_leaf,
    rescore,
)
from veriot.ai.base import DEFAULT_THRESHOLD, Detector, MultivariateDetector
from veriot.ai.detectors import KnnDistance, RobustZ, SeasonalEW
from veriot.ai.forecast import Forecast, ForecastPoint, evaluate_forecast, forecast
from veriot.ai.health import Health, machine_health
from veriot.ai.multivariate import Hotelling
from veriot.ai.registry import DEFAULT_DETECTOR, DEFAULT_MULTIVARIATE, make_detector
from veriot.ai.trust import Grade, TrustSignals, is_plausible, trust_grade

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MULTIVARIATE",
    "DEFAULT_THRESHOLD",
    "Alert",
    "AlertEngine",
    "Detector",
    "Forecast",
    "ForecastPoint",
    "Grade",
    "Health",
    "Hotelling",
    "KnnDistance",
    "MultivariateDetector",
    "RobustZ",
    "ScoredReading",
    "SeasonalEW",
    "TrustSignals",
    "alert_from_json",
    "alert_leaf",
    "alert_to_json",
    "evaluate_forecast",
    "forecast",
    "is_plausible",
    "machine_health",
    "make_detector",
    "parse_alert_leaf",
    "rescore",
    "trust_grade",
]
