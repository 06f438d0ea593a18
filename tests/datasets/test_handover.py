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


def test_a_model_with_rrelu_unpickles_in_a_process_that_never_imported_it():
    """A ParallelRunner worker that built no model loads another worker's model holding RReLU."""
    import subprocess
    import sys

    import keras

    from activation_compare.datasets.handover import to_bytes
    from activation_compare.layers import RReLU

    inputs = keras.Input((4,))
    model = keras.Model(inputs, RReLU(name="act")(keras.layers.Dense(3)(inputs)))
    script = (
        "import sys; from activation_compare.datasets.handover import unpickle; "
        "print(type(unpickle(sys.stdin.buffer.read()).get_layer('act')).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", script], input=to_bytes(model), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().split()[-1] == "RReLU"
