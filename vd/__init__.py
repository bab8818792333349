"""vd: violence detection in video.

Three stages driven by one CLI (``vd extract``, ``vd train``, ``vd predict``). Importing ``vd``
is cheap: TensorFlow/Keras load only inside the commands that need them.
"""

__version__ = "0.1.0"

# Label 1 always means violent, everywhere.
LABEL_NAMES = {0: "nonviolent", 1: "violent"}
