"""Benchmarks: side-by-side runs against baselines in the same process tree, reported as medians
and ratios. Not tests: nothing here asserts timing. Run ``make bench`` or ``python -m bench``."""
