"""Optional benchmarks: inference speed (``speed.py``). The ablation of cnn-plus is a
group of the pipeline: ``python -m helpers.pipeline --ablation``."""
