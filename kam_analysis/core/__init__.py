"""The bottom layer: the data contract (schemas), translation, number formatting, errors.

Nothing here imports from another part of ``kam_analysis``.
"""
