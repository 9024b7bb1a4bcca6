"""Ranges without calibration data: the per-channel output moments that batch norms record
(batch_norm.py), propagated through the graph (propagate.py, normal.py), turned into the
ranges the lowering freezes (ranges.py)."""
