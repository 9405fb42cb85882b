"""Retargeting: motion files -> Go2 reference clips in HDF5. Imports neither genesis nor torch."""
