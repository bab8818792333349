"""Other ways to run stage one than this machine's pipeline (``vd extract --engine``).

Each engine takes the clips still to do and hands finished ``(clip, features)`` pairs, in input
order, to the same store writer as the local pipeline (vd/extract/run.py), so resume, failures,
``vd info`` and ``vd merge`` work the same whichever engine made a store.
"""
