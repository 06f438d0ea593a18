"""Benchmarks of the project against the original experiment's code (not installed).

Run from the repository root: ``uv run python -m benchmarks.cpu --help``.
The modules the workers import (``protocol``, ``seed_worker``) use only the
standard library, NumPy and TensorFlow, so they also run in the TF 2.15
environment of the original code.
"""
