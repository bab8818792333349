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
import re
import threading

_configured = False
_we_set_log_level = False


def configure_environment() -> None:
    """Set process-wide defaults that must exist before TF/OpenCV load (user values win)."""
    global _configured, _we_set_log_level
    if _configured:
        return
    _configured = True
    _we_set_log_level = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    # TF leaves oneDNN off on AVX2-only CPUs; on by default it measured ~+40% for VGG16 here.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # TF's C++ log lines (oneDNN notices, "falling back to Eigen") are noise for a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # real TF errors still raise in Python
    # FFmpeg's decoder chatter ("moov atom not found", "Invalid NAL unit size") must not flood the
    # terminal: vd reports one line per failed clip instead. -8 is AV_LOG_QUIET.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")


class _KerasWithoutOptionalExtras:
    """Keras imports three packages whenever they are installed, for features vd never uses:
    scikit-learn (its estimator wrappers), pandas (DataFrames as ``fit`` input) and matplotlib
    (image and bounding-box galleries). Where they are (any data-science environment; vd's dev
    extras install all three, and matplotlib is one of vd's own dependencies) they cost ~1.5 s
    of CPU in every process that loads Keras, a third of Keras' own start here. The Keras modules that probe for them run with the package
    hidden, so Keras takes it as absent; nothing else changes: the package stays importable,
    and vd imports matplotlib itself where it draws (:func:`load_pyplot`). A Keras whose modules
    moved is simply not matched. Measured here: Keras' start 4.2 → 2.8 s of CPU (three runs
    each). The package is hidden only while those modules run (milliseconds, once): another
    thread importing it in that moment would find it missing; vd loads Keras before any of its
    threads draws.
    """

    # Keras module → what it probes for, outermost first: the first not yet imported is hidden
    # (matplotlib itself where vd has not loaded it, else only its pyplot)
    PROBES = {"keras.src.wrappers.fixes": ("sklearn",),
              "keras.src.wrappers.utils": ("sklearn",),
              "keras.src.wrappers.sklearn_wrapper": ("sklearn",),
              "keras.src.trainers.data_adapters.array_slicing": ("pandas",),
              "keras.src.visualization.plot_image_gallery": ("matplotlib", "matplotlib.pyplot"),
              "keras.src.visualization.plot_bounding_box_gallery": ("matplotlib",)}

    def find_spec(self, name, path, target=None):
        import importlib.machinery
        import sys

        hidden = next((m for m in self.PROBES.get(name, ()) if m not in sys.modules), None)
        if hidden is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Hiding(spec.loader, hidden)
        return spec


class _Hiding:
    """A module loader that runs the module with ``hidden`` unimportable (None in sys.modules)."""

    def __init__(self, loader, hidden: str):
        self._loader, self._hidden = loader, hidden

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        import sys

        sys.modules[self._hidden] = None
        try:
            self._loader.exec_module(module)
        finally:
            if sys.modules.get(self._hidden, 0) is None:
                del sys.modules[self._hidden]


def _install_keras_import_filter() -> None:
    import sys

    if not any(isinstance(f, _KerasWithoutOptionalExtras) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasWithoutOptionalExtras())


configure_environment()
_install_keras_import_filter()


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


class Distribution:
    """Data-parallel training on several devices of one machine (``vd train --gpus N|all``).

    TensorFlow: ``tf.distribute.MirroredStrategy`` over the devices; every global batch is split
    across them and gradients are summed, and BatchNorm layers are switched to synchronized
    statistics (:meth:`prepare`), so a step computes what one device computes on the whole batch
    (up to float summation order). JAX: ``keras.distribution.DataParallel`` (one SPMD program
    over the global batch; BatchNorm statistics are global by construction). Other backends, or
    one device: nothing (:meth:`scope` is a no-op). Build the model and run ``fit`` inside
    :meth:`scope` (the same object, entered twice).
    """

    def __init__(self, devices: list[str] | None):
        self.devices = list(devices) if devices and len(devices) > 1 else None
        self._strategy = None
        self._jax = None
        if self.devices is None:
            return
        if backend() == "tensorflow":
            import tensorflow as tf

            self._strategy = tf.distribute.MirroredStrategy(self.devices)
        elif backend() == "jax":
            import keras

            # names as keras.distribution.list_devices() gives them: "gpu:0", "cpu:1", …
            self._jax = keras.distribution.DataParallel(devices=[d.lstrip("/").lower() for d in self.devices])
        else:
            from vd.errors import UserError

            raise UserError(f"--gpus with more than one device needs the tensorflow or jax backend, "
                            f"not {backend()}")

    @classmethod
    def for_training(cls, gpus, devices: list[str] | None = None) -> "Distribution":
        """``gpus``: None = every GPU on TensorFlow (one device on other backends), an int N
        or "all". ``devices``: explicit device names instead (tests: virtual CPU devices).
        Asking for more GPUs than there are is one line (UserError)."""
        from vd.errors import UserError

        if devices:
            return cls(devices)
        n = gpu_count()
        if gpus is None:
            return cls(_gpu_names(n) if backend() == "tensorflow" else None)
        want = n if str(gpus).lower() == "all" else int(gpus)
        if want < 1 or want > max(n, 1) or (want > 1 and want > n):
            raise UserError(f"--gpus {gpus}: this machine has {n} GPU{'s' if n != 1 else ''} "
                            f"visible to {backend()}")
        return cls(_gpu_names(want) if want > 1 else None)

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.devices else 1

    def scope(self):
        if self._strategy is not None:
            return self._strategy.scope()
        if self._jax is not None:
            return self._jax.scope()
        return contextlib.nullcontext()

    def prepare(self, model) -> None:
        """TF: synchronized BatchNorm statistics across replicas while training. The saved
        config keeps ``synchronized: False`` (a training-time setting; True would not load on
        the JAX or torch backend)."""
        if self._strategy is None:
            return
        import types

        import keras

        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
                layer.synchronized = True

                def get_config(self, _cls=type(layer)):
                    return {**_cls.get_config(self), "synchronized": False}

                layer.get_config = types.MethodType(get_config, layer)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _gpu_names(n: int) -> list[str]:
    if backend() == "jax":
        return [f"gpu:{i}" for i in range(n)]
    return [f"/gpu:{i}" for i in range(n)]


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
    filter_native_logs()
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


# TensorFlow's C++ log lines (absl: "E0000 00:00:1795783955.175118  11596 util.cc:131] ...";
# older TF: "2025-01-08 14:55:59.249677: E tensorflow/core/util/util.cc:131] ...") and absl's
# pre-initialisation notice. Some reach the terminal whatever TF_CPP_MIN_LOG_LEVEL says (TF
# 2.21 prints "I0000 ... port.cc:153] oneDNN custom operations are on" at import even with
# level 3), and oneDNN's "oneDNN supports DT_INT32 only on platforms with AVX-512" (once per
# process, AVX2-only CPUs) was seen during `make demo`; the terminal filter below drops such
# lines by their shape.
_NATIVE_LOG = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
                         rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [^ \]]+:\d+\] "
                         rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
_MAYBE_NATIVE = re.compile(rb"^(?:[IWEF]\d|\d{4}-\d|WARNING: All log)")  # hold, may be one
_END = b"\x00vd-native-log-filter-end\x00"
_filter_lock = threading.Lock()
_filter_installed = False


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy the pipe to the terminal line by line, without TF's C++ log lines. Partial lines
    (progress bars redrawn with \\r) pass at once unless they may be the start of a log line."""
    buf = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        done = not chunk or _END in chunk
        buf += chunk.split(_END)[0]
        *lines, buf = buf.split(b"\n")
        keep = b"".join(line + b"\n" for line in lines if not _NATIVE_LOG.match(line))
        if buf and (done or not _MAYBE_NATIVE.match(buf)):
            keep, buf = keep + (b"" if _NATIVE_LOG.match(buf) else buf), b""
        while keep:
            try:
                keep = keep[os.write(out_fd, keep):]
            except OSError:
                break
        if done:
            break
    os.close(read_fd)


def filter_native_logs() -> bool:
    """Keep TensorFlow's C++ log lines off an interactive terminal for the rest of the process.

    Only where stderr is a terminal, vd itself chose ``TF_CPP_MIN_LOG_LEVEL`` (the user did not)
    and ``VD_DEBUG`` is unset: file descriptor 2, where C++ code writes, then becomes a pipe
    that a thread copies to the terminal minus lines shaped like TF/absl log lines, while
    ``sys.stderr`` gets its own descriptor on the terminal, so Python's messages, tracebacks
    and progress bars (which ask ``isatty()``) are untouched. At exit the pipe is drained and
    descriptor 2 restored. Returns whether the filter is (now) on.
    """
    global _filter_installed
    import atexit
    import sys

    with _filter_lock:
        if _filter_installed:
            return True
        if os.environ.get("VD_DEBUG") or not _we_set_log_level:
            return False
        try:
            if not os.isatty(2):
                return False
        except OSError:
            return False
        import io

        sys.stderr.flush()
        owner = os.getpid()
        terminal = os.dup(2)
        python_err = io.TextIOWrapper(io.FileIO(os.dup(2), "w"), encoding=sys.stderr.encoding,
                                      errors=sys.stderr.errors, line_buffering=True)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        sys.stderr = python_err
        pump = threading.Thread(target=_pump, args=(read_fd, terminal), name="vd-native-log-filter",
                                daemon=True)
        pump.start()

        def restore() -> None:
            if os.getpid() != owner:  # a forked child: the pipe and its reader are the parent's
                return
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            with contextlib.suppress(OSError):
                os.write(2, _END)
            pump.join(timeout=2.0)
            os.dup2(terminal, 2)
            os.close(terminal)

        atexit.register(restore)
        _filter_installed = True
        return True


def inference_graph(model, jit_compile: bool = False):
    """Under TensorFlow, ``model(x, training=False)`` as one ``tf.function`` whose batch
    dimension is open (rows shaped and typed as the model's one input): traced once for any
    number of rows. None under other backends.

    ``model.predict`` / ``predict_on_batch`` trace their graph for the first batch shape they see
    and again, relaxed, for the second: a live camera's or a timeline's varying window counts,
    or a backbone's short last batch, cost two traces (~1 s of CPU each for the hybrid preset
    or MobileNetV3) per loaded model. ``jit_compile`` as Keras would choose it
    (``model.jit_compile``: XLA on a GPU, where XLA still compiles once per batch shape).
    """
    if backend() != "tensorflow":
        return None
    import tensorflow as tf

    (row,) = model.inputs
    spec = tf.TensorSpec([None, *row.shape[1:]], tf.as_dtype(row.dtype))
    # autograph off: the call has no Python control flow on tensors to convert, and autograph
    # writes a generated module into TMPDIR (vd serve promises to leave nothing there)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec],
                       autograph=False, jit_compile=bool(jit_compile))


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


def save_inference_savedmodel(model, path, shape, dtype, name: str) -> None:
    """``model(x, training=False)`` as a TensorFlow SavedModel at ``path`` with one
    ``serving_default`` signature: input ``name`` of ``shape`` (None = any size) and ``dtype``,
    outputs the model's (a dict's keys name them).

    What ``model.export(format="tf_saved_model")`` writes for such a model, without Keras'
    search of every attribute of every layer for lookup tables to bundle (vd's graphs hold none):
    that search was ~5 s of CPU for the head and ~14 s with a backbone, most of an export here.
    The variables saved are those the traced call reads. Under another backend, Keras' export
    (which converts JAX through jax2tf).
    """
    keras = load_keras()
    if backend() != "tensorflow":
        model.export(str(path), format="tf_saved_model", verbose=False,
                     input_signature=[keras.InputSpec(shape=shape, dtype=dtype, name=name)])
        return
    import tensorflow as tf

    spec = tf.TensorSpec(shape, tf.as_dtype(dtype), name=name)
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                        autograph=False)
    concrete = serve.get_concrete_function()
    module = tf.Module()
    module.serve = serve
    module.model_variables = list(concrete.variables)
    tf.saved_model.save(module, str(path), signatures={"serving_default": concrete})


def tflite_from_saved_model(saved_model_dir) -> bytes:
    """A TensorFlow SavedModel → TFLite flatbuffer bytes, with TFLite's builtin ops only.

    Only builtins, so the file runs on any TFLite/LiteRT interpreter without the Flex delegate.
    The LSTMs' loops lower to builtins only when every shape is static (a fixed batch): a
    dynamic one is refused with one line rather than written with select TF ops.
    """
    load_keras()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as e:  # ConverterError: MLIR diagnostics, many lines
        from vd.errors import UserError, one_line

        raise UserError(f"TFLite conversion failed (builtin ops only): {one_line(e)}") from None


def tflite_run(path, inputs) -> dict:
    """Run a TFLite file's ``serving_default`` signature once: ``inputs`` = {name: array}, or
    one array for a one-input signature. Returns {output name: float32 array}.

    TensorFlow's own ``tf.lite.Interpreter`` (deprecated in favour of ``ai_edge_litert``, which
    takes the same calls; used here because TensorFlow is already installed).
    """
    import warnings

    load_keras()
    import numpy as np
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    names = list(runner.get_input_details())
    if not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    elif len(names) == 1 and names[0] not in inputs and len(inputs) == 1:
        inputs = {names[0]: next(iter(inputs.values()))}
    return {k: np.asarray(v, np.float32) for k, v in runner(**inputs).items()}
