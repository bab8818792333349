"""The ``vd`` command: click commands and their output formats (tables, JSON, CSV), no logic.

``vd.cli.main`` is the entry point; each command's module imports only click at module level,
so ``vd --help`` never loads TensorFlow.
"""
