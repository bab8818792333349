"""The report of an evaluation on untrimmed recordings: ``summary.json``, ``recordings.csv``,
one picture per recording and the operating curve of the whole set.

- ``<recording>.png``: the window scores over stream time, the threshold, the annotated
  violent intervals shaded, incidents as bars (green: true, red: false alarm) and missed
  intervals marked.
- ``operating_curve.png``: recall against false alarms per calm hour as the threshold moves,
  at the smoothing and cooldown in force (what an operator chooses from), the chosen setting
  marked.

matplotlib loads only here (through :func:`vd.runtime.load_pyplot`).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from vd.score.alarm_quality import AlarmSetting, RecordingQuality, Windows, evaluate

CSV_FIELDS = ("video", "hours", "calm_hours", "intervals", "detected", "missed", "recall",
              "incidents", "false_alarms", "false_alarms_per_hour", "latency_p50_s",
              "latency_p90_s", "latency_max_s", "window_auc", "window_ap", "windows")


def picture_name(video: str) -> str:
    """A file name for a recording's picture (its relative path, flattened)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video) + ".png"


def recording_rows(recs: list[RecordingQuality]) -> list[dict]:
    rows = []
    for r in recs:
        row = r.summary()
        row.update(window_auc=r.window_auc, window_ap=r.window_ap, windows=r.windows)
        rows.append({k: row.get(k) for k in CSV_FIELDS})
    return rows


def plot_recording(plt, rec: RecordingQuality, w: Windows, threshold: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 3.2))
    mid = (w.start_s + w.end_s) / 2.0
    for i, (a, b) in enumerate(rec.intervals):
        ax.axvspan(a, b, color="tab:red", alpha=0.18, label="annotated violence" if i == 0 else None)
    ax.plot(mid, w.p, color="black", lw=1.0, label="window score")
    ax.axhline(threshold, color="tab:orange", ls="--", lw=1.0, label=f"threshold {threshold:.2f}")
    false = set(rec.false_alarms)
    for j, inc in enumerate(rec.incidents):
        colour = "tab:red" if j in false else "tab:green"
        ax.hlines(1.06, inc.start_s, inc.end_s, colors=colour, lw=6)
        ax.plot([inc.alarm_s], [1.06], marker="v", color=colour, ms=7)
    for a, b in rec.missed:
        ax.annotate("missed", ((a + b) / 2, 0.92), ha="center", color="tab:red", fontsize=8)
    ax.set_xlim(0, max(rec.duration_s, float(w.end_s.max()) if len(w) else 1.0))
    ax.set_ylim(-0.02, 1.12)
    ax.set_xlabel("stream seconds")
    ax.set_ylabel("P(violent)")
    ax.set_title(f"{rec.video}: {len(rec.detected)}/{len(rec.intervals)} found, "
                 f"{len(rec.false_alarms)} false alarm(s)  (bars: incidents, green true, red false)",
                 fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def operating_curve(recordings, setting: AlarmSetting, thresholds) -> list[dict]:
    """Recall and false alarms per calm hour for each threshold, smoothing and cooldown fixed."""
    points = []
    for t in sorted(set(float(x) for x in thresholds) | {setting.threshold}):
        s = AlarmSetting(t, setting.k, setting.n, setting.cooldown)
        summary, _ = evaluate(recordings, s)
        points.append({"threshold": t, "recall": summary["recall"],
                       "false_alarms_per_hour": summary["false_alarms_per_hour"]})
    return points


def plot_operating_curve(plt, points: list[dict], setting: AlarmSetting, path: Path) -> None:
    pts = [p for p in points if p["recall"] is not None and p["false_alarms_per_hour"] is not None]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([p["false_alarms_per_hour"] for p in pts], [p["recall"] for p in pts], marker=".",
            color="black", lw=0.6)
    for p in pts[:: max(1, len(pts) // 8)]:
        ax.annotate(f"{p['threshold']:.2f}", (p["false_alarms_per_hour"], p["recall"]),
                    textcoords="offset points", xytext=(3, 3), fontsize=7, color="dimgray")
    chosen = [p for p in pts if p["threshold"] == setting.threshold]
    if chosen:
        ax.plot([chosen[0]["false_alarms_per_hour"]], [chosen[0]["recall"]], marker="o", ms=9,
                color="tab:orange", label=f"threshold {setting.threshold:.2f}, {setting.smooth}, "
                                          f"cooldown {setting.cooldown:g} s")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("false alarms per hour of calm footage")
    ax.set_ylabel("recall of annotated fights")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("as the threshold moves", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out_dir, summary: dict, recs: list[RecordingQuality], recordings, setting: AlarmSetting,
                 thresholds) -> list[Path]:
    """Write the report into ``out_dir`` (created); returns the files written."""
    from vd.runtime import load_pyplot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json", out / "recordings.csv"]
    written[0].write_text(json.dumps(summary, indent=2, default=float) + "\n")
    with open(written[1], "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        wr.writeheader()
        wr.writerows(recording_rows(recs))
    plt = load_pyplot("--report pictures")
    for rec, (_, _, _, w) in zip(recs, recordings):
        path = out / picture_name(rec.video)
        plot_recording(plt, rec, w, setting.threshold, path)
        written.append(path)
    curve = out / "operating_curve.png"
    plot_operating_curve(plt, operating_curve(recordings, setting, thresholds), setting, curve)
    written.append(curve)
    return written
