"""The `data_ingestion` pipeline."""
