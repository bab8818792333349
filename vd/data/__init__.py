"""Videos on disk and features in HDF5: discovery, labels, splits, the feature store.

Imports neither TensorFlow nor OpenCV.
"""
