"""Training state: a model's checkpoints, so training resumes after a crash and is reused when done.

One job per module:

- :mod:`.fingerprint`: what a checkpoint was trained on, and what differs;
- :mod:`.lock`: one process at a time per checkpoint folder (``flock``);
- :mod:`.store`: the folder on disk (weights ``.npz``, the ``state.json`` commit record,
  a :class:`~.store.CheckpointRecord` with a :class:`~.store.Status`);
- :mod:`.decision`: fresh, resume or reuse;
- :mod:`.callback`: the Keras callback that commits every epoch;
- :mod:`.checkpoints`: the handle the training node gets, and its session;
- :mod:`.dataset`: the catalog dataset that hands the training node its handle.

Nothing here knows about MLflow: a tracker learns what happens from
:mod:`activation_compare.training_events`.
"""

from .checkpoints import Checkpoints, TrainingSession, training_session
from .dataset import CheckpointsDataset
from .decision import Mode
from .store import CheckpointRecord, Status

__all__ = [
    "CheckpointRecord", "Checkpoints", "CheckpointsDataset", "Mode", "Status", "TrainingSession", "training_session",
]
