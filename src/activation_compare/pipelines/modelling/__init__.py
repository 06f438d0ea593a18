"""The `modelling` pipeline: build, train, evaluate and plot one model per activation and seed."""

from .pipeline import create_pipeline
from .rigorous_pipeline import create_rigorous_pipeline

__all__ = ["create_pipeline", "create_rigorous_pipeline"]
