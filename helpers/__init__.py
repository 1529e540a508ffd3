"""Shared code for the Fashion-MNIST Keras notebooks.

One module per concern: ``data`` (loading, verifying, splitting), ``plotting``
(every figure), ``artifacts`` (where outputs go, atomic writes), ``parameters``
(notebook parameter checks) and ``pipeline`` (papermill + nbconvert runs).
"""

__version__ = "0.1.0"
