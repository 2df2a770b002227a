"""Benchmarks: scripts that print their figures and save them as JSON under ``results/``.

Each is run as ``python -m scripts.bench.<name>``; none is a test, and no test asserts a timing.
Where the machine is noisy (2 shared cores here), the figures that matter are ratios.
"""
