"""Detectors by name, and the defaults chosen by `veriot ai evaluate`."""

from __future__ import annotations

from veriot.ai.base import Detector, MultivariateDetector
from veriot.ai.detectors import KnnDistance, RobustZ, SeasonalEW
from veriot.ai.multivariate import Hotelling
from veriot.core.errors import InputError

UNIVARIATE: dict[str, type[Detector]] = {
    SeasonalEW.name: SeasonalEW,
    RobustZ.name: RobustZ,
    KnnDistance.name: KnnDistance,
}
MULTIVARIATE: dict[str, type[MultivariateDetector]] = {Hotelling.name: Hotelling}

DEFAULT_DETECTOR = SeasonalEW.name
DEFAULT_MULTIVARIATE = Hotelling.name


def detector_names() -> list[str]:
    return [*UNIVARIATE, *MULTIVARIATE]


def make_detector(name: str = DEFAULT_DETECTOR) -> Detector | MultivariateDetector:
    """A fresh detector with its frozen settings. Raises InputError for an unknown name."""
    if name in UNIVARIATE:
        return UNIVARIATE[name]()
    if name in MULTIVARIATE:
        return MULTIVARIATE[name]()
    raise InputError(f"unknown detector {name!r}; want one of {', '.join(detector_names())}")
