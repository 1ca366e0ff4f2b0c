"""From a wanted false-call rate to a scan threshold, using a model's calibration curve.

:func:`genocnn.calibration.calibrate` stores, per task, how many sites a scan
calls per Mbp of shuffled background at a grid of thresholds. Below the lowest
rate the background can measure (:data:`MIN_CALLS` calls in
``background_bp``), the curve is extended on the log scale: the log call rate
is close to linear in the logit threshold in the tail, and the last measured
points fix the line.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import GenocnnError

__all__ = ["DEFAULT_FPR", "resolve_threshold", "threshold_for_rate"]

#: Default false calls per Mbp of shuffled background for ``genocnn scan``.
DEFAULT_FPR = 1.0
#: Fewest background calls a point of the curve must rest on to be used directly.
MIN_CALLS = 5
#: Threshold of a model without a calibration curve (trained before calibration existed).
UNCALIBRATED_THRESHOLD = 0.5


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def threshold_for_rate(calibration: dict, rate: float, task: int = 0) -> float:
    """The probability threshold at which a scan calls ``rate`` false sites per Mbp of background.

    Parameters
    ----------
    calibration : dict
        As :func:`calibrate` returns (``model.calibration``).
    rate : float
        Wanted false calls per Mbp (> 0).
    task : int

    Returns
    -------
    float
        Interpolated on (logit threshold, log rate) along the curve's tail
        (from its highest rate on) where the background
        measured at least :data:`MIN_CALLS` calls, extrapolated along the
        last measured points below that.

    Examples
    --------
    >>> cal = {"thresholds": np.array([[0.5, 0.9, 0.99]]), "calls_per_mbp": np.array([[100.0, 10.0, 5.0]]),
    ...        "background_bp": 2_000_000}
    >>> round(threshold_for_rate(cal, 10.0), 3)
    0.9
    """
    t = np.asarray(calibration["thresholds"][task], dtype=np.float64)
    r = np.asarray(calibration["calls_per_mbp"][task], dtype=np.float64)
    peak = int(r.argmax())  # below it, calls merge into ever longer sites: only the tail is used
    t, r = t[peak:], r[peak:]
    floor = MIN_CALLS / calibration["background_bp"] * 1e6
    keep = r >= floor
    lt, lr = _logit(t[keep]), np.log(r[keep])
    if not keep.any():  # the background never reached MIN_CALLS: the highest threshold measured
        return float(t[-1])
    if rate >= r[keep][0]:
        return float(t[keep][0])
    if rate >= r[keep][-1] or keep.sum() == 1:
        order = np.argsort(lr)
        return float(1 / (1 + np.exp(-np.interp(np.log(rate), lr[order], lt[order]))))
    # extrapolate: a line through the tail of the measured points (the last third, at least two)
    k = max(2, keep.sum() // 3)
    slope, icpt = np.polyfit(lr[-k:], lt[-k:], 1)
    return float(1 / (1 + np.exp(-(slope * np.log(rate) + icpt))))


def resolve_threshold(
    calibration: dict | None, threshold: float | None = None, fpr: float | None = None, task: int = 0
) -> tuple[float, str]:
    """The probability threshold a scan calls sites at, and a sentence saying where it came from.

    Parameters
    ----------
    calibration : dict or None
        ``model.calibration``.
    threshold : float, optional
        Explicit probability threshold (0-1); wins when given.
    fpr : float, optional
        Wanted false calls per Mbp of shuffled background; default
        :data:`DEFAULT_FPR` when the model is calibrated.
    task : int

    Returns
    -------
    threshold : float
    source : str

    Raises
    ------
    GenocnnError
        Both given, a value out of range, or ``fpr`` for a model without calibration.
    """
    if threshold is not None and fpr is not None:
        raise GenocnnError("give `threshold` or `fpr`, not both")
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise GenocnnError(f"`threshold` must be between 0 and 1, got {threshold}")
        return float(threshold), f"threshold {threshold:g} (given)"
    if fpr is not None and not (math.isfinite(fpr) and fpr > 0):
        raise GenocnnError(f"`fpr` must be a number > 0 of false calls per Mbp, got {fpr}")
    if calibration is None:
        if fpr is not None:
            raise GenocnnError("the model has no calibration curve (trained before calibration existed, or with "
                               "training.calibration_bp=0): give `threshold` instead of `fpr`")
        return UNCALIBRATED_THRESHOLD, f"threshold {UNCALIBRATED_THRESHOLD:g} (the model has no calibration curve)"
    rate = DEFAULT_FPR if fpr is None else fpr
    value = threshold_for_rate(calibration, rate, task)
    highest = float(np.max(np.asarray(calibration["calls_per_mbp"][task], dtype=np.float64)))
    if rate > highest:
        warnings.warn(f"`fpr` {rate:g} is above the highest rate the calibration measured ({highest:.3g} false "
                      f"calls per Mbp): sites are called at that rate's threshold, {value:.4g}", stacklevel=2)
    return value, f"threshold {value:.4g} for {rate:g} false call(s) per Mbp of shuffled background"
