"""Shared code for the Fashion-MNIST Keras notebooks.

One module per concern: ``data`` (loading, verifying, splitting), ``models``
(variants and their training recipes), ``training`` (seeded, timed, resumable fit),
``evaluation`` (metrics, inference speed, statistics), ``explain`` (Grad-CAM),
``comparison`` (runs side by side), ``plotting`` (every figure), ``artifacts``
(where outputs go, atomic writes), ``parameters`` (notebook parameter checks),
``predict`` (classify your own images) and ``pipeline`` (papermill + nbconvert runs).
"""

__version__ = "0.1.0"
