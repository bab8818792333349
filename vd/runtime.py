"""The one place that knows about TensorFlow, OpenCV and matplotlib process settings.

Everything else in vd is written with ``keras`` / ``keras.ops`` and runs unchanged with
``KERAS_BACKEND=jax`` or ``torch``. What is TensorFlow-specific (oneDNN, log noise, GPU memory
growth, mixed precision, multi-GPU strategy) lives here.

``load_pyplot()`` is the one way vd imports matplotlib (file-only ``Agg`` backend; a missing
matplotlib becomes one line naming the ``plots`` extra, never a traceback).

``configure_environment()`` must run before TensorFlow or OpenCV is imported: it only sets
environment variables the user has not set.
"""

from __future__ import annotations

import contextlib
import os

_configured = False


def configure_environment() -> None:
    """Set process-wide defaults that must exist before TF/OpenCV load (user values win)."""
    global _configured
    if _configured:
        return
    _configured = True
    # TF leaves oneDNN off on AVX2-only CPUs; on by default it measured ~+40% for VGG16 here.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # TF's C++ log lines (oneDNN notices, "falling back to Eigen") are noise for a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # real TF errors still raise in Python
    # FFmpeg's decoder chatter ("moov atom not found", "Invalid NAL unit size") must not flood the
    # terminal: vd reports one line per failed clip instead. -8 is AV_LOG_QUIET.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")


configure_environment()


def backend() -> str:
    """Name of the Keras backend in use (imports Keras, quietly)."""
    return load_keras().backend.backend()


def gpu_count() -> int:
    """Number of GPUs visible to the active backend (0 on CPU-only machines)."""
    load_keras()  # quietly: TF's CUDA probing prints to fd 2 on machines without a GPU
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if name == "jax":
        import jax

        return sum(1 for d in jax.devices() if d.platform == "gpu")
    if name == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def configure_accelerator(mixed_precision: bool | None = None) -> dict:
    """Prepare the backend for work: GPU memory growth (TF), mixed precision on GPU only.

    ``mixed_precision=None`` means "on when a GPU is present": mixed_float16 measured slower on
    CPU. Returns a small dict describing what was set, for run summaries.
    """
    import keras

    name = backend()
    gpus = gpu_count()
    if name == "tensorflow" and gpus:
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):  # already initialised: leave as is
                tf.config.experimental.set_memory_growth(gpu, True)
    use_mixed = bool(gpus) if mixed_precision is None else mixed_precision
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    return {"backend": name, "gpus": gpus, "mixed_precision": use_mixed}


def distribution_scope():
    """A context for building/compiling models: ``MirroredStrategy`` with >1 TF GPU, else nothing."""
    if backend() == "tensorflow" and gpu_count() > 1:
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def load_keras():
    """Import Keras (and its backend) with TensorFlow's start-up chatter kept off the terminal.

    TF 2.2x prints oneDNN/CPU-feature notices straight to file descriptor 2 before its logging
    is initialised, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Import errors still raise normally.
    Set ``VD_DEBUG=1`` to see the chatter.
    """
    import sys

    if "keras" in sys.modules or os.environ.get("VD_DEBUG"):
        import keras

        return keras
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.backend.backend()
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.constant(0)  # device initialisation notices, printed on first use
                # "N out of the last M calls triggered tf.function retracing": advice for
                # library authors, not for someone scoring clips of different lengths.
                tf.get_logger().setLevel("ERROR")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras


def load_pyplot(purpose: str = "plots"):
    """``matplotlib.pyplot`` set to the file-only ``Agg`` backend (vd never opens a window).

    matplotlib is a core dependency, but a trimmed environment may lack it; then this raises
    :class:`vd.errors.UserError` whose one line names ``purpose`` (e.g. "--timeline") and the
    ``plots`` extra, which the CLI prints instead of an internal error.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        from vd.errors import UserError

        raise UserError(f"{purpose}: matplotlib is not installed (pip install 'vd[plots]')") from e
    return plt
