"""PNG plots of a run's history: loss, per-class accuracy with the gap shaded, learning rate.

matplotlib is a core dependency (also the ``plots`` extra); where it cannot be imported,
:func:`save_plots` returns a one-line note and writes nothing (training goes on).
"""

from __future__ import annotations

from pathlib import Path


def save_plots(run_dir: Path, history: list[dict]) -> str | None:
    """Write loss.png, per_class_accuracy.png, lr.png; returns a note when plots were skipped."""
    if not history:
        return "no epochs to plot"
    from vd.errors import UserError
    from vd.runtime import load_pyplot

    try:
        plt = load_pyplot("plots skipped")
    except UserError as e:
        return e.message
    ep = [r["epoch"] for r in history]

    def col(k):
        return [r.get(k, float("nan")) for r in history]

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ep, col("loss"), label="train loss")
    ax.plot(ep, col("val_loss"), label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "loss.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    v, nv = col("val_violent_acc"), col("val_nonviolent_acc")
    ax.plot(ep, v, label="violent (val)", color="tab:red")
    ax.plot(ep, nv, label="non-violent (val)", color="tab:blue")
    ax.plot(ep, col("val_balanced_acc"), label="balanced (val)", color="black", linestyle="--")
    ax.fill_between(ep, v, nv, color="tab:orange", alpha=0.25, label="class gap")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(run_dir / "per_class_accuracy.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(ep, col("lr"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    fig.tight_layout()
    fig.savefig(run_dir / "lr.png", dpi=100)
    plt.close(fig)
    return None
