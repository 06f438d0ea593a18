"""Wiring of the ``data_processing`` pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import normalize_images, split_validation


def create_pipeline(**kwargs) -> Pipeline:
    """Normalize both splits and choose the validation data."""
    return Pipeline(
        [
            Node(
                func=normalize_images,
                inputs="raw_train",
                outputs="normalized_train",
                name="normalize_train_node",
            ),
            Node(
                func=normalize_images,
                inputs="raw_test",
                outputs="test_set",
                name="normalize_test_node",
            ),
            Node(
                func=split_validation,
                inputs=["normalized_train", "test_set", "params:data"],
                outputs=["train_set", "validation_set", "validation_info"],
                name="split_validation_node",
            ),
        ]
    )
