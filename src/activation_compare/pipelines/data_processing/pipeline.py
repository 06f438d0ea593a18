"""Wiring of the ``data_processing`` pipeline (one per protocol)."""

from kedro.pipeline import Node, Pipeline

from .nodes import hold_out_validation, normalize_images, split_validation


def _normalize_nodes() -> list[Node]:
    return [
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
    ]


def create_pipeline(**kwargs) -> Pipeline:
    """Normalize both splits and choose the validation data."""
    return Pipeline(
        [
            *_normalize_nodes(),
            Node(
                func=split_validation,
                inputs=["normalized_train", "test_set", "params:data"],
                outputs=["train_set", "validation_set", "validation_info"],
                name="split_validation_node",
            ),
        ]
    )


def create_rigorous_pipeline(**kwargs) -> Pipeline:
    """Normalize both splits; hold the validation data out of the training set.

    The test set is made here but read by no node of this pipeline: under the
    rigorous protocol only the final evaluations read it.
    """
    return Pipeline(
        [
            *_normalize_nodes(),
            Node(
                func=hold_out_validation,
                inputs=["normalized_train", "params:data", "params:tuning"],
                outputs=["train_set", "validation_set", "validation_info"],
                name="hold_out_validation_node",
            ),
        ]
    )
