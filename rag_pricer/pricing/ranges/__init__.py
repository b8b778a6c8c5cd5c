"""Calibrated price ranges: split conformal prediction on relative (log) errors, per strategy,
whose width follows the item's retrieval evidence."""

from rag_pricer.pricing.ranges.calibration import (
    CALIBRATION_DIR,
    DEFAULT_COVERAGE,
    DEFAULT_METHOD,
    METHODS,
    CalibrationError,
    RangeCalibration,
    calibration_path,
    conformal_bounds,
    log_errors,
    missing_note,
)

__all__ = [
    "CALIBRATION_DIR",
    "DEFAULT_COVERAGE",
    "DEFAULT_METHOD",
    "METHODS",
    "CalibrationError",
    "RangeCalibration",
    "calibration_path",
    "conformal_bounds",
    "log_errors",
    "missing_note",
]
