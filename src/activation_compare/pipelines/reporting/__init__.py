"""The `reporting` pipeline: the comparison of every trained model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
