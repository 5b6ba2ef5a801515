"""`make demo` end to end: trains to >= 95% on held-out digits and writes its plot."""

from optimlab.demo import main


def test_demo_trains_and_plots(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "learning rate read from the optimizer state" in out
    assert (tmp_path / "training.png").stat().st_size > 10_000
