"""The public subpackages are attributes of ``optimlab`` after ``import optimlab`` alone."""

import subprocess
import sys
import textwrap


def test_subpackages_are_attributes_after_a_bare_import():
    # A fresh interpreter: in the test session other modules already imported them.
    code = textwrap.dedent(
        """
        import sys
        import optimlab
        assert "optimlab.optim" in sys.modules
        tx = optimlab.adamw(optimlab.schedules.cosine_decay(1e-3, decay_steps=10))
        assert callable(optimlab.checkpoint.restore) and callable(optimlab.checkpoint.save)
        assert optimlab.optim.AdamW.__module__.startswith("optimlab.optim")
        assert optimlab.optim.lr_scheduler.CosineAnnealingLR
        import optimlab.optim as optim
        assert optim is optimlab.optim
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
