"""The README's Python examples run as written."""

import pathlib
import re

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    with jax.numpy_dtype_promotion("standard"):  # what users run with by default
        for code in blocks:
            exec(compile(code, "README.md", "exec"), {})
