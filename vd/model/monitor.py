"""Per-class monitoring (the seed's per-class monitoring, validation gates): the gap rules, validation gates, acceptance table.

:class:`GapRules` is the rule logic as a pure class (no Keras) so it can be tested on scripted
gap sequences. :class:`PerClassMonitor` is the Keras callback that measures per-class validation
accuracy every epoch, puts it into the epoch logs (``val_violent_acc``, ``val_nonviolent_acc``,
``val_gap``, ``val_balanced_acc``, ``lr``) and applies the rules' decisions.

Rules (gap = |violent acc − non-violent acc| on validation), counted only for epochs after
``start_epoch`` (the warmup):
- gap > 15% warns, > 25% is critical (a message either way);
- gap > 20% for 5 consecutive epochs halves the learning rate (counter restarts after it);
- gap > 30% for 3 consecutive epochs stops training, recommending a change the user can still
  make (:func:`collapse_advice`: another preset than the one in use, concrete ``--set`` values
  from the run's own settings, more data).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from vd.model import metrics
from vd.model.acceptance import ACCEPTANCE, acceptance_table, format_acceptance  # noqa: F401

log = logging.getLogger("vd.model.monitor")

WARN_GAP, CRITICAL_GAP = 0.15, 0.25
HALVE_GAP, HALVE_PATIENCE = 0.20, 5
STOP_GAP, STOP_PATIENCE = 0.30, 3
GATES = ((10, "gap", 0.20, "per-class gap < 20% by epoch 10"),
         (20, "violent", 0.65, "violent accuracy > 65% by epoch 20"))
# The seed's presets built against class collapse (per-class monitor, focal loss, moderate
# dropout): the alternatives the stop advice names, never the one in use.
ANTI_COLLAPSE_PRESETS = ("hybrid", "balanced")


def collapse_advice(preset=None) -> str:
    """What to change after the stop rule fired, for the resolved ``preset`` of the run (a
    :class:`vd.model.presets.Preset`, overrides applied; None = unknown).

    Names only changes from where the run is: a seed anti-collapse preset other than the one in
    use (hybrid-motion counts as hybrid's family, so plain hybrid is still offered), each
    dropout list 0.1 lower than the run's own (when any is above 0), one augmentation variant
    fewer (when the run uses more than one), and more training clips.
    """
    name = getattr(preset, "name", None)
    others = [p for p in ANTI_COLLAPSE_PRESETS if p != name]
    parts = [" or ".join(f"--preset {p}" for p in others)
             + (f" (this run is {name})" if name else "")]
    if preset is not None:
        sets = []
        for key in ("lstm_dropout", "dense_dropout"):
            values = tuple(getattr(preset, key, ()))
            if any(v > 0 for v in values):
                lower = ",".join(f"{max(0.0, round(v - 0.1, 2)):g}" for v in values)
                sets.append(f"--set {key}={lower}")
        if sets:
            parts.append("lower dropout (" + " ".join(sets) + ")")
        if int(getattr(preset, "aug", 1)) > 1:
            parts.append(f"less augmentation (--set aug={int(preset.aug) - 1})")
    else:
        parts.append("lower dropout (--set lstm_dropout=… --set dense_dropout=…)")
    parts.append("more training clips")
    return ", ".join(parts)


@dataclass
class Decision:
    """What the rules say after one epoch: a level, actions and one-line messages."""

    level: str = "ok"          # ok | warning | critical | (before start: "warmup")
    halve_lr: bool = False
    stop: bool = False
    messages: list[str] = field(default_factory=list)


@dataclass
class GapRules:
    """The seed's gap rules as a state machine over epochs (1-based epoch numbers)."""

    start_epoch: int = 0
    halve_run: int = 0         # consecutive epochs with gap > HALVE_GAP (since last halving)
    stop_run: int = 0          # consecutive epochs with gap > STOP_GAP
    preset: object = None      # the run's resolved Preset: what the stop advice may suggest

    def update(self, epoch: int, gap: float) -> Decision:
        d = Decision()
        if epoch <= self.start_epoch:
            d.level = "warmup"
            return d
        if math.isnan(gap):
            gap = 1.0  # a class with no correct prediction info counts as the worst case
        self.halve_run = self.halve_run + 1 if gap > HALVE_GAP else 0
        self.stop_run = self.stop_run + 1 if gap > STOP_GAP else 0
        if gap > CRITICAL_GAP:
            d.level = "critical"
            d.messages.append(f"CRITICAL: class gap {gap:.1%} > {CRITICAL_GAP:.0%}")
        elif gap > WARN_GAP:
            d.level = "warning"
            d.messages.append(f"warning: class gap {gap:.1%} > {WARN_GAP:.0%}")
        if self.stop_run >= STOP_PATIENCE:
            d.stop = True
            d.messages.append(
                f"stopping: class gap > {STOP_GAP:.0%} for {STOP_PATIENCE} consecutive epochs; "
                f"the model is collapsing onto one class — change the architecture or recipe: "
                f"{collapse_advice(self.preset)}")
        elif self.halve_run >= HALVE_PATIENCE:
            d.halve_lr = True
            self.halve_run = 0
            d.messages.append(f"class gap > {HALVE_GAP:.0%} for {HALVE_PATIENCE} consecutive "
                              f"epochs: halving the learning rate")
        return d

    def state(self) -> dict:
        return {"halve_run": self.halve_run, "stop_run": self.stop_run}

    def restore(self, state: dict) -> None:
        self.halve_run = int(state.get("halve_run", 0))
        self.stop_run = int(state.get("stop_run", 0))


def gate_report(epoch: int, row: dict) -> str | None:
    """The seed's validation gate due at ``epoch`` (10 or 20) as a pass/fail line, else None."""
    for at, key, limit, text in GATES:
        if epoch == at:
            if key == "gap":
                ok = row["val_gap"] < limit
                value = row["val_gap"]
            else:
                ok = row["val_violent_acc"] > limit
                value = row["val_violent_acc"]
            return f"gate epoch {at}: {text}: {value:.1%} {'PASS' if ok else 'FAIL'}"
    return None


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class PerClassMonitor(_keras_callback_base()):
    """Keras callback: per-class validation metrics each epoch, gap rules, gates.

    ``val_data`` is a ``keras.utils.PyDataset`` of validation features in a fixed
    order and ``val_labels`` (N,) their labels. ``schedule`` is the
    :class:`~vd.model.recipe.ScaledSchedule` to halve. ``apply_rules`` False keeps measuring
    and warning but never halves or stops (presets whose seed config had no monitor).
    One-line messages (the epoch line, rule and gate messages) go to the ``vd.model.monitor``
    logger at INFO. ``extra``: a strategy whose ``logs(probs)`` adds numbers of its own to the
    epoch's logs (e.g. :class:`vd.score.alarm_selection.AlarmSelection`).
    """

    def __init__(self, val_data, val_labels, schedule, rules: GapRules, *, apply_rules=True,
                 extra=None):
        super().__init__()
        self.val_data = val_data
        self.val_labels = np.asarray(val_labels).astype(int)
        self.schedule = schedule
        self.rules = rules
        self.apply_rules = apply_rules
        self.stopped_reason: str | None = None
        self.last_softmax: np.ndarray | None = None   # (N, 2) of the last epoch, for calibration
        self.extra = extra
        self._forward = None   # the model's inference graph, made when Keras sets the model

    def set_model(self, model):
        """Keras hands the callback its model at the start of ``fit``: its inference graph
        (:func:`vd.runtime.inference_graph`) is made here, traced on the first epoch's end."""
        from vd import runtime

        super().set_model(model)
        self._forward = runtime.inference_graph(model)

    def _val_softmax(self) -> np.ndarray:
        """(N, 2) float32 softmax of the validation rows (``val_data``'s batches, in order).

        Under TensorFlow through one graph traced once per fit: ``model.predict`` builds a data
        pipeline and a predict step on every call, and traces the step again for a short last
        batch, ~0.2 s of CPU an epoch on a small validation set. ``model.predict`` under other
        backends.
        """
        if self._forward is None:
            return np.asarray(self.model.predict(self.val_data, verbose=0), np.float32)
        data = self.val_data   # a PyDataset of (x, y[, weights]) batches
        parts = [np.asarray(self._forward(np.asarray(data[i][0], np.float32)), np.float32)
                 for i in range(len(data))]
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        out = self._val_softmax()
        probs = out[:, 1]
        self.last_softmax = out
        s = metrics.summarize(self.val_labels, probs)
        logs["val_loss"] = self._val_loss(out)
        logs["val_accuracy"] = s["accuracy"]
        logs["val_violent_acc"] = s["violent_acc"]
        logs["val_nonviolent_acc"] = s["nonviolent_acc"]
        logs["val_gap"] = s["gap"]
        logs["val_balanced_acc"] = s["balanced_acc"]
        logs["lr"] = float(np.asarray(self.model.optimizer.learning_rate))
        alarms = ""
        if self.extra is not None:
            logs.update(self.extra.logs(probs))
            alarms = f" | {self.extra.line(logs)}"
        n = epoch + 1
        log.info(f"epoch {n}: loss {logs.get('loss', float('nan')):.4f} "
                 f"acc {logs.get('accuracy', float('nan')):.3f} | val violent {s['violent_acc']:.1%} "
                 f"non-violent {s['nonviolent_acc']:.1%} gap {s['gap']:.1%} "
                 f"balanced {s['balanced_acc']:.1%}{alarms} | lr {logs['lr']:.2e}")
        d = self.rules.update(n, s["gap"])
        for i, m in enumerate(d.messages):
            is_action = (d.halve_lr or d.stop) and i == len(d.messages) - 1
            if is_action and not self.apply_rules:
                m = f"(not applied: this preset has no per-class monitor) {m}"
            log.info(f"  {m}")
        if self.apply_rules and d.halve_lr:
            self.schedule.halve()
            self._retrace()
        if self.apply_rules and d.stop:
            self.stopped_reason = d.messages[-1]
            self.model.stop_training = True
        gate = gate_report(n, logs)
        if gate:
            log.info(f"  {gate}")

    def _val_loss(self, out: np.ndarray) -> float:
        """Validation loss as Keras reports it (loss + regularisation), from the predictions.

        Computed eagerly from the probabilities already predicted for the per-class numbers,
        so validation costs one pass and no extra compiled test function.
        """
        from keras import ops

        y = np.zeros_like(out)
        y[np.arange(len(out)), self.val_labels] = 1.0
        loss = float(ops.convert_to_numpy(ops.mean(self.model.loss(y, out))))
        reg = sum(float(ops.convert_to_numpy(x)) for x in self.model.losses)
        return loss + reg

    def _retrace(self):
        """JAX/torch capture variables at trace time: rebuild the train step to see the new lr."""
        import keras

        if keras.backend.backend() != "tensorflow":
            self.model.make_train_function(force=True)
