"""In-memory hand-over between nodes: the same object in one process, shared bytes across processes."""

import multiprocessing
import pickle

import numpy as np
import pytest
from kedro.io import DatasetError
from kedro.io.data_catalog import SharedMemoryDataCatalog
from kedro.runner.parallel_runner import ParallelRunnerManager

from activation_compare.datasets.handover import HandOverDataset


def test_in_one_process_the_object_itself_is_handed_over():
    dataset = HandOverDataset()
    with pytest.raises(DatasetError, match="Nothing was saved"):
        dataset.load()
    images = np.zeros((4, 32, 32, 3), np.float32)
    dataset.save(images)
    assert dataset.load() is images and dataset.exists()
    dataset.release()
    assert not dataset.exists()


def test_a_pickled_copy_is_empty_and_says_so():
    """The catalog travels to worker processes by pickle; an empty dataset must stay empty."""
    assert not pickle.loads(pickle.dumps(HandOverDataset())).exists()


def test_with_a_manager_every_process_sees_what_one_saved():
    # The manager ParallelRunner starts, in a new interpreter: a fork of this pytest
    # process (TensorFlow loaded by other tests) can die in TensorFlow's mutexes.
    manager = ParallelRunnerManager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        catalog = SharedMemoryDataCatalog({"train_set": HandOverDataset()})
        catalog.set_manager_datasets(manager)
        catalog.validate_catalog()  # what ParallelRunner checks first
        worker_copy = pickle.loads(pickle.dumps(catalog["train_set"]))
        worker_copy.save({"images": np.arange(3)})
        np.testing.assert_array_equal(catalog["train_set"].load()["images"], np.arange(3))
    finally:
        manager.shutdown()
