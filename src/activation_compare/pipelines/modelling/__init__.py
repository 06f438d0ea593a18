"""The `modelling` pipeline."""


def create_pipeline(*args, **kwargs):
    """See :func:`.pipeline.create_pipeline` (imported on use: modelling and reporting import each other)."""
    from .pipeline import create_pipeline as _create_pipeline

    return _create_pipeline(*args, **kwargs)


__all__ = ["create_pipeline"]
