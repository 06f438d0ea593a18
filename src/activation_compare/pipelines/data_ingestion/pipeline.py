"""Wiring of the ``data_ingestion`` pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import select_splits


def create_pipeline(**kwargs) -> Pipeline:
    """Load the configured image source and select the raw train/test splits."""
    return Pipeline(
        [
            Node(
                func=select_splits,
                inputs=["raw_images", "params:data"],
                outputs=["raw_train", "raw_test", "class_names"],
                name="select_splits_node",
            )
        ]
    )
