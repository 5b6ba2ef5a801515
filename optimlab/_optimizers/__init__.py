"""Optimizer families with torch.optim counterparts (one family per module). (private)."""
