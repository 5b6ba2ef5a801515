"""The notebooks' plot_schedule helper draws a schedule's values."""

import numpy as np
import pytest

from optimlab import schedules as S

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_plot_schedule_draws_the_values():
    from notebooks.plotting import plot_schedule

    ax = plot_schedule(S.step(1.0, 10, 0.5), 30, label="step")
    ax = plot_schedule(S.cosine_annealing(1.0, 15), [0, 15, 30], ax=ax)
    first, second = ax.get_lines()
    np.testing.assert_allclose(first.get_ydata()[[0, 10, 29]], [1.0, 0.5, 0.25])
    np.testing.assert_allclose(second.get_ydata(), [1.0, 0.0, 1.0], atol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["step"]
    matplotlib.pyplot.close(ax.figure)
