"""Calibrated price ranges: split conformal prediction on relative (log) errors, per strategy."""

from rag_pricer.pricing.ranges.calibration import (
    CALIBRATION_DIR,
    DEFAULT_COVERAGE,
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
    "CalibrationError",
    "RangeCalibration",
    "calibration_path",
    "conformal_bounds",
    "log_errors",
    "missing_note",
]
