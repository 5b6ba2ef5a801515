"""Optimizer families from optax and recent papers (one family per module). (private)."""
