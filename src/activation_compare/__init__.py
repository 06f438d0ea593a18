"""activation-compare."""

import os

# oneDNN kernels for TensorFlow's CPU ops. TensorFlow turns them on by itself only
# on CPUs with AVX-512/AMX; on the AVX2 machines this project is developed on they
# made training 2.9-3.9x faster (benchmarks/README.md, "Levers"). TensorFlow reads
# the variable once, when it is first imported, so it is set here, before any
# module of the project imports it. A user's own setting (0 to compare) wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
