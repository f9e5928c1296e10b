"""Neighbor search, pair vectors and the smooth environment matrix."""
