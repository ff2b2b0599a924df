"""Processors: reference data, and the numba kernels (controls, liquidation) with their
pure-Python reference twins."""
