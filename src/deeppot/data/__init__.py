"""Reading DeePMD-kit data systems and drawing training batches (numpy only)."""

from deeppot.data.batching import (
    BatchSampler,
    batch_sizes,
    iter_frames,
    make_batch,
    system_probabilities,
)
from deeppot.data.discover import expand_systems
from deeppot.data.system import DeepmdSystem

__all__ = [
    "BatchSampler",
    "DeepmdSystem",
    "batch_sizes",
    "expand_systems",
    "iter_frames",
    "make_batch",
    "system_probabilities",
]
