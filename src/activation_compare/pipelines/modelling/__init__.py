"""The `modelling` pipeline: build, train, evaluate and plot one model per activation and seed."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
