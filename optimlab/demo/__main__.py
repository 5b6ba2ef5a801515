"""Entry point for ``python -m optimlab.demo``."""

from ._train import main

if __name__ == "__main__":
    raise SystemExit(main())
