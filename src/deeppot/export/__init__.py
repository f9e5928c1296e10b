"""Freezing a trained model into one self-contained file."""
