"""The `reporting` pipeline."""
