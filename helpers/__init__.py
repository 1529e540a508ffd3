"""The thin shared package of the Fashion-MNIST Keras notebooks: the data, shared
figures, statistics, run files, costs, Grad-CAM, parameter checks, predict and the
headless runner. Models, compile and fit live in the notebooks."""
