"""The `data_processing` pipeline."""

from .pipeline import create_pipeline, create_rigorous_pipeline

__all__ = ["create_pipeline", "create_rigorous_pipeline"]
