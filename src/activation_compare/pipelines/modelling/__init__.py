"""The `modelling` pipeline."""
