"""Helpers of every stage: batched quaternions in torch (rotations.py), Genesis start-up noise kept off the
terminal (quiet.py)."""
