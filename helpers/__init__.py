"""The thin shared package of the Fashion-MNIST Keras notebooks.

``data`` (find, verify and split the data; its tf.data input), ``plotting`` (shared
figures), ``stats`` (bootstrap and McNemar), ``artifacts`` (run files, resumable
training state, the output folder's lock), ``cost`` (multiply-adds, FLOPs, the
epoch timer), ``gradcam``, ``parameters`` (notebook parameter checks),
``predict`` (classify your own images) and ``pipeline`` (papermill + nbconvert
runs). Models, compile and fit live in the notebooks.
"""
