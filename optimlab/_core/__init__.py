"""The core: protocol, types, tree math, key paths, validation and hyperparameters. (private)."""
