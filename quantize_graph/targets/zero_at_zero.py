"""Which ranges quint8 with zero at 0 holds (onednn's activations take no offset): those whose
minimum is 0, up to float noise in the calibrated minimum. Shared by onednn.py and
onednn_residual.py (the summand)."""

NEGATIVE_TOLERANCE = 1e-6  # relative: calibrated minimums this close to 0 count as 0


def holds(rng):
    """Whether a tensor with range `rng` ((min, max), or None: unknown) fits quint8 [0, max]."""
    return rng is not None and rng[0] >= -NEGATIVE_TOLERANCE * max(abs(rng[1]), 1e-12)
