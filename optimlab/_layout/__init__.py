"""Layout: the multi-tensor path and sharding helpers. (private)."""
