"""Benchmarks: run each from the project's root as a module, e.g. ``python -m benchmarks.service``."""
