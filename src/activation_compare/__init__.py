"""activation-compare."""

import os

# oneDNN kernels for TensorFlow's CPU ops. TensorFlow turns them on by itself only
# on CPUs with AVX-512/AMX; on the AVX2 machines this project is developed on they
# made training 2.9-3.9x faster (benchmarks/README.md, "Levers"). TensorFlow reads
# the variable once, when it is first imported, so it is set here, before any
# module of the project imports it. A user's own setting (0 to compare) wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# TensorFlow's C++ start-up lines and CUDA probing, hidden where there is no GPU
# unless TF_CPP_MIN_LOG_LEVEL is set (quiet.py says how and why). Also before
# TensorFlow is first imported, hence here.
# Likewise upstream deprecation warnings no user can act on.
from activation_compare.quiet import (  # noqa: E402
    hide_known_library_warnings,
    quiet_tensorflow_startup,
)

quiet_tensorflow_startup()
hide_known_library_warnings()

# `import keras` also imports scikit-learn, matplotlib and IPython, for its
# scikit-learn wrappers, image plots and notebook display, which training never
# uses: most of a second on the way to the first training step. Those modules now
# load when first used (private_apis.py); the project itself imports scikit-learn
# to score a trained model and matplotlib to draw it. Before Keras' import, hence here.
from activation_compare.private_apis import defer_keras_imports  # noqa: E402

defer_keras_imports()

__version__ = "0.1.0"
