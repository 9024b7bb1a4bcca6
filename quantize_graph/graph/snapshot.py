"""A quantized graph written down node for node, to check that a refactoring changed nothing.

`describe` turns a GraphDef (and the ranges it froze) into plain JSON: per node its op, inputs,
device and attributes, and for each tensor-valued attribute (Const values) its dtype, shape and
content. `differences` compares two descriptions and lists what differs, one line each.

Float contents that came out of a TensorFlow run (calibration ranges, data-driven bias
corrections) may differ in the last bits between CPUs, so floats compare within a relative
tolerance; integer contents (quantized weights) compare exactly unless `integer_slack` allows
that many elements to move by one step (a float bias on a rounding boundary).
"""
import hashlib

import numpy as np
from tensorflow.python.framework import tensor_util

FLOAT_RTOL = 1e-5
_SMALL = 16  # tensors with at most this many elements are written out whole


def describe(graph_def, ranges=None):
    nodes = {}
    for node in graph_def.node:
        attrs = {}
        for key in sorted(node.attr):
            value = node.attr[key]
            if value.HasField("tensor"):
                attrs[key] = _tensor(tensor_util.MakeNdarray(value.tensor))
            else:
                attrs[key] = hashlib.sha1(value.SerializeToString(deterministic=True)).hexdigest()
        nodes[node.name] = {"op": node.op, "inputs": list(node.input), "device": node.device,
                            "attrs": attrs}
    described = {"order": [n.name for n in graph_def.node], "nodes": nodes}
    if ranges is not None:
        described["ranges"] = {t: [float(lo), float(hi)] for t, (lo, hi) in sorted(ranges.items())}
    return described


def _tensor(array):
    out = {"dtype": str(array.dtype), "shape": list(array.shape)}
    if array.dtype.kind in "fc":
        values = array.astype(np.float64).ravel()
        if values.size <= _SMALL:
            out["values"] = values.tolist()
        else:  # moments stand for the content; equal moments of a changed tensor are unlikely
            out["moments"] = [float(values.sum()), float(np.abs(values).sum()),
                              float((values ** 2).sum()), float(values.min()), float(values.max())]
    elif array.dtype.kind in "iub":
        values = array.astype(np.int64).ravel()
        out["sha1"] = hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()
        out["sum"] = int(values.sum())
        out["abs_sum"] = int(np.abs(values).sum())
        if values.size <= _SMALL:
            out["values"] = values.tolist()
    else:
        out["sha1"] = hashlib.sha1(repr(array.tolist()).encode()).hexdigest()
    return out


def differences(before, after, rtol=FLOAT_RTOL, integer_slack=0):
    """Lines naming what differs between two `describe` results (empty: identical)."""
    lines = []
    if before["order"] != after["order"]:
        gone = [n for n in before["order"] if n not in after["nodes"]]
        new = [n for n in after["order"] if n not in before["nodes"]]
        lines.append("node order differs (%d gone: %s; %d new: %s)" % (
            len(gone), ", ".join(gone[:5]), len(new), ", ".join(new[:5])))
    for name in before["order"]:
        if name not in after["nodes"]:
            continue
        a, b = before["nodes"][name], after["nodes"][name]
        for field in ("op", "inputs", "device"):
            if a[field] != b[field]:
                lines.append("%s: %s %r -> %r" % (name, field, a[field], b[field]))
        for key in sorted(set(a["attrs"]) | set(b["attrs"])):
            if key not in a["attrs"] or key not in b["attrs"]:
                lines.append("%s: attr %s only %s" % (name, key, "after" if key in b["attrs"] else "before"))
            elif not _same(a["attrs"][key], b["attrs"][key], rtol, integer_slack):
                lines.append("%s: attr %s differs" % (name, key))
    ra, rb = before.get("ranges"), after.get("ranges")
    if (ra is None) != (rb is None):
        lines.append("ranges recorded only %s" % ("after" if rb is not None else "before"))
    elif ra is not None:
        if set(ra) != set(rb):
            lines.append("ranged tensors differ: %d only before, %d only after" % (
                len(set(ra) - set(rb)), len(set(rb) - set(ra))))
        for t in sorted(set(ra) & set(rb)):
            if not np.allclose(ra[t], rb[t], rtol=rtol, atol=1e-7):
                lines.append("range of %s: %s -> %s" % (t, ra[t], rb[t]))
    return lines


def _same(a, b, rtol, integer_slack):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if a["dtype"] != b["dtype"] or a["shape"] != b["shape"]:
        return False
    if "sha1" in a:
        if a["sha1"] == b["sha1"]:
            return True
        # Allowed: up to `integer_slack` elements one step apart (sum moves by at most that).
        return (integer_slack > 0 and abs(a["sum"] - b["sum"]) <= integer_slack
                and abs(a["abs_sum"] - b["abs_sum"]) <= integer_slack)
    key = "values" if "values" in a else "moments"
    return np.allclose(a[key], b[key], rtol=rtol, atol=1e-7)
