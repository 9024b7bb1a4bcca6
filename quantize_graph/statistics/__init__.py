"""What is known about the float graph's tensors, in one Statistics object (sources.py),
from the first source that applies: a ranges file; calibration data, measured in one run of
the float graph (measure.py; calibrate.py chooses the ranges); or, without data, the
per-channel output moments that batch norms record (batch_norm.py), propagated through the
graph (propagate.py, normal.py) and turned into ranges and means (ranges.py)."""
