"""fseflow: claims stream processor for the military health-insurance fund (régime 08).

B2 batches are decoded (`fseflow.codecs`), checked and liquidated by numba kernels
(`fseflow.processors`), and carried by stream agents (`fseflow.stream`).
"""
from fseflow import config as _config  # noqa: F401  (sets the numba cache folder before numba loads)
from fseflow.exceptions import FseflowError

__version__ = "0.1.0"
__all__ = ["FseflowError", "__version__"]
