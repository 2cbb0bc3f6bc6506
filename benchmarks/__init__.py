"""Benchmarks: the pipeline measured against the tutorial's script."""
