"""``vd export``: a run as one bundle file, or as an ONNX / TFLite / SavedModel graph.

This package composes a backbone (:mod:`vd.extract`) and a trained run (:mod:`vd.model`), so it
sits beside :mod:`vd.score`, above both: :mod:`vd.export.graphs` builds the graphs,
:mod:`vd.export.runtimes` writes them and runs the written files, :mod:`vd.export.run` is
:func:`export_run`, the one function ``vd export`` calls.

Graphs (built with Keras, exported with Keras' own ``Model.export`` where it works):

- the **head** (default): input ``features`` float32 (N, T, D) — the run's features, T =
  ``frames`` (20), D = the backbone's feature dimension — and two outputs:
  ``violent_probability`` float32 (N,) = ``Run.violent_probability`` (calibrated with the
  run's temperature when the run has calibration.json, ``softmax(log p / T)`` column 1; the
  raw softmax column 1 otherwise) and ``softmax`` float32 (N, 2) = what the run's
  ``model.keras`` outputs (column 1 = violent, before calibration);
- ``with_backbone``: input ``frames`` uint8 (T, S, S, 3), one clip's T sampled RGB frames
  resized to the backbone's S×S (INTER_AREA, as vd decodes), → the same two outputs for that
  one clip, (1,) and (1, 2). Inside: the backbone with its in-graph preprocessing, the
  features rounded to float16 as vd's stores and ``vd predict`` keep them, then the head. This
  is ``vd predict --no-tta``'s score of a clip whose frames were sampled as vd samples them.

Formats: ``onnx`` (``model.export(format="onnx")``, tf2onnx underneath; the head's batch is
dynamic), ``savedmodel`` (:func:`vd.runtime.save_inference_savedmodel`: what
``model.export(format="tf_saved_model")`` writes, signature ``serving_default``), ``tflite``
(such a SavedModel with a fixed batch of 1, then
:func:`vd.runtime.tflite_from_saved_model` converts it with builtin ops only: Keras' own
``format="litert"`` keeps the LSTMs' TensorList loops as Flex (select TF) ops when the batch is
dynamic, which the TFLite interpreter cannot run without the Flex delegate). A TFLite head takes
one clip at a time: (1, T, D).

Every export is checked before it is reported: the written file is run (onnxruntime, the TFLite
interpreter, TensorFlow) on probe inputs and compared with Keras; ``ExportResult.check`` holds
the largest absolute difference in the violent probability.
"""

from vd.export.run import FORMATS, ExportResult, export_run, format_for  # noqa: F401

__all__ = ["FORMATS", "ExportResult", "export_run", "format_for"]
