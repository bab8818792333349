"""Where matplotlib cannot be imported, every plot says so in one line naming the `plots`
extra (vd.runtime.load_pyplot), never an internal error. The CLI case (a subprocess whose
``sys.modules['matplotlib']`` is None) lives with the trained run in
tests/score/test_hostile_predict.py."""

import sys

import pytest

from vd.errors import UserError


@pytest.fixture
def no_matplotlib(monkeypatch):
    """``import matplotlib`` raises ImportError in this test, as in an environment without it."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_load_pyplot_gives_an_agg_pyplot():
    from vd.runtime import load_pyplot

    plt = load_pyplot()
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg" and hasattr(plt, "subplots")


def test_load_pyplot_without_matplotlib_is_a_user_error_naming_the_extra(no_matplotlib):
    from vd.runtime import load_pyplot

    with pytest.raises(UserError) as e:
        load_pyplot("--timeline")
    assert e.value.message == "--timeline: matplotlib is not installed (pip install 'vd[plots]')"


def test_timeline_plot_without_matplotlib_is_a_user_error(no_matplotlib, tmp_path):
    from vd.score.timeline import plot_timeline

    with pytest.raises(UserError, match=r"--timeline: .*vd\[plots\]"):
        plot_timeline(None, tmp_path / "t.png")  # refused before the score is looked at
    assert not (tmp_path / "t.png").exists()


def test_training_plots_without_matplotlib_are_a_note(no_matplotlib, tmp_path):
    from vd.model.plots import save_plots

    history = [{"epoch": 1, "loss": 0.7, "val_loss": 0.6, "lr": 1e-3}]
    note = save_plots(tmp_path, history)
    assert note == "plots skipped: matplotlib is not installed (pip install 'vd[plots]')"
    assert list(tmp_path.iterdir()) == []
