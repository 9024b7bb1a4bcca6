"""Seeded generators of bad or odd inputs for tests/test_fuzz.py (and `make fuzz`): GraphDefs
mutated from small valid ones, out-of-range flag values, calibration arrays of every wrong
kind. Each generator is a pure function of its numpy Generator, so a failing case is
reproduced from the seed and index printed by the test."""
import math

import numpy as np
from tensorflow.core.framework import graph_pb2, types_pb2

from tests.graphs import conv_relu_pool_graph, matmul_graph

# ---- GraphDef mutations ----------------------------------------------------------------------

BASES = {"conv": conv_relu_pool_graph, "matmul": matmul_graph}
_BAD_DTYPES = [types_pb2.DT_STRING, types_pb2.DT_INT32, types_pb2.DT_BOOL, types_pb2.DT_HALF,
               types_pb2.DT_COMPLEX64, 999]


def _consts(g):
    return [n for n in g.node if n.op == "Const"]


def _float_consts(g):
    return [n for n in _consts(g) if n.attr["value"].tensor.dtype == types_pb2.DT_FLOAT
            and n.attr["value"].tensor.tensor_content]


def _with_attr(g, rng, names):
    nodes = [n for n in g.node if any(a in n.attr for a in names)]
    node = nodes[rng.integers(len(nodes))]
    return node, [a for a in names if a in node.attr][0]


def _strides_length(g, rng):
    node, attr = _with_attr(g, rng, ["strides", "ksize"])
    del node.attr[attr].list.i[:]
    node.attr[attr].list.i.extend([1] * int(rng.choice([0, 1, 3, 5])))


def _strides_value(g, rng):
    node, attr = _with_attr(g, rng, ["strides", "ksize"])
    node.attr[attr].list.i[int(rng.integers(4))] = int(rng.choice([0, -1, -(2 ** 31), 2 ** 40]))


def _padding(g, rng):
    node, _ = _with_attr(g, rng, ["padding"])
    node.attr["padding"].s = bytes(rng.choice([b"FOO", b"", b"same", b"EXPLICIT"]))


def _attr_type(g, rng):
    node = g.node[int(rng.integers(len(g.node)))]
    if not node.attr:
        node.attr["T"].i = 3
        return
    name = sorted(node.attr)[int(rng.integers(len(node.attr)))]
    value = node.attr[name]
    value.Clear()
    kind = int(rng.integers(4))
    if kind == 0:
        value.i = 7
    elif kind == 1:
        value.s = b"x"
    elif kind == 2:
        value.f = 1.5
    else:
        value.list.i.extend([1, 2])


def _missing_attr(g, rng):
    node = [n for n in g.node if n.attr][int(rng.integers(len([n for n in g.node if n.attr])))]
    del node.attr[sorted(node.attr)[int(rng.integers(len(node.attr)))]]


def _dtype_attr(g, rng):
    node, attr = _with_attr(g, rng, ["T", "dtype"])
    node.attr[attr].type = int(rng.choice(_BAD_DTYPES))


def _const_dtype(g, rng):
    const = _consts(g)[int(rng.integers(len(_consts(g))))]
    const.attr["value"].tensor.dtype = int(rng.choice(_BAD_DTYPES))


def _const_shape(g, rng):
    tensor = _consts(g)[int(rng.integers(len(_consts(g))))].attr["value"].tensor
    dims = tensor.tensor_shape.dim
    if dims and rng.integers(2):
        dims[int(rng.integers(len(dims)))].size = int(rng.choice([0, 1, 7, -3, 2 ** 40]))
    else:
        dims.add().size = int(rng.integers(1, 4))


def _content(g, rng):
    tensor = _float_consts(g)[int(rng.integers(len(_float_consts(g))))].attr["value"].tensor
    data = tensor.tensor_content
    cut = int(rng.integers(len(data) + 8))
    tensor.tensor_content = data[:cut] if cut < len(data) else data + b"\0" * (cut - len(data) + 1)


def _non_finite(g, rng):
    tensor = _float_consts(g)[int(rng.integers(len(_float_consts(g))))].attr["value"].tensor
    values = np.frombuffer(tensor.tensor_content, np.float32).copy()
    values[rng.integers(values.size, size=max(1, values.size // 7))] = rng.choice(
        [np.nan, np.inf, -np.inf])
    tensor.tensor_content = values.tobytes()


def _empty_weights(g, rng):
    """A conv filter or MatMul weight with a zero dimension (its reader then mismatches)."""
    tensor = _float_consts(g)[int(rng.integers(len(_float_consts(g))))].attr["value"].tensor
    tensor.tensor_content = b""
    tensor.tensor_shape.dim[int(rng.integers(len(tensor.tensor_shape.dim)))].size = 0


def _filter_channels(g, rng):
    """A weight Const replaced by a consistent one of another shape (the reader must notice)."""
    tensor = _float_consts(g)[int(rng.integers(len(_float_consts(g))))].attr["value"].tensor
    dims = [d.size for d in tensor.tensor_shape.dim]
    dims[int(rng.integers(len(dims)))] += int(rng.integers(1, 3))
    if rng.integers(3) == 0:
        dims = dims[:-1]  # the wrong rank
    tensor.tensor_content = rng.uniform(-1, 1, int(np.prod(dims))).astype(np.float32).tobytes()
    del tensor.tensor_shape.dim[:]
    for d in dims:
        tensor.tensor_shape.dim.add().size = d


def _rename(g, rng):
    node = g.node[int(rng.integers(len(g.node)))]
    node.name = str(rng.choice(["", node.name + "_x", g.node[0].name, "a:b", "^c"]))


def _bad_input(g, rng):
    nodes = [n for n in g.node if n.input]
    node = nodes[int(rng.integers(len(nodes)))]
    i = int(rng.integers(len(node.input)))
    node.input[i] = str(rng.choice([node.input[i] + ":7", "missing", "^" + node.name, node.name,
                                    node.input[i] + ":-1", ""]))


def _unknown_op(g, rng):
    node = g.node[int(rng.integers(len(g.node)))]
    node.op = str(rng.choice([node.op + "X", "Conv2d", "NoSuchOp", "", node.op.lower()]))


def _extra_input(g, rng):
    nodes = [n for n in g.node if n.op != "Placeholder"]
    nodes[int(rng.integers(len(nodes)))].input.append(g.node[0].name)


MUTATIONS = [_strides_length, _strides_value, _padding, _attr_type, _missing_attr, _dtype_attr,
             _const_dtype, _const_shape, _content, _non_finite, _empty_weights, _filter_channels,
             _rename, _bad_input, _unknown_op, _extra_input]


def graph_mutants(rng, count):
    """[(label, GraphDef, input name, output name)]: one to three mutations of a base graph."""
    bases = {k: f() for k, f in BASES.items()}
    cases = []
    for i in range(count):
        key = sorted(bases)[i % len(bases)]
        base, inp, out = bases[key]
        g = graph_pb2.GraphDef()
        g.CopyFrom(base)
        names = []
        for _ in range(int(rng.integers(1, 4))):
            mutation = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
            try:
                mutation(g, rng)
            except (IndexError, ValueError):  # nothing of that kind left to mutate
                continue
            names.append(mutation.__name__.lstrip("_"))
        cases.append(("%s:%s" % (key, "+".join(names) or "none"), g, inp, out))
    return cases


# ---- flags -------------------------------------------------------------------------------------

_NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e39", "-1e39"]


def flag_cases():
    """[(label, [extra CLI args])]: every flag with values outside its range."""
    cases = []
    for mode in ("eightbit", "round", "weights", "weights_rounded", "quantize"):
        for bits in ("-1", "0", "1", "4", "16", "17", "64"):
            cases.append(("bitdepth %s %s" % (mode, bits), ["--mode=" + mode, "--bitdepth=" + bits]))
    for lo, hi in (("0", "inf"), ("-inf", "1"), ("nan", "1"), ("0", "nan"), ("1", "0"), ("1", "1")):
        cases.append(("quantized_input %s %s" % (lo, hi), [
            "--mode=eightbit", "--target=reference", "--quantized_input",
            "--quantized_input_min=" + lo, "--quantized_input_max=" + hi]))
        cases.append(("fallback %s %s" % (lo, hi), [
            "--mode=eightbit", "--target=reference", "--quantized_fallback_min=" + lo,
            "--quantized_fallback_max=" + hi]))
    for flag in ("calibration_size", "input_height", "input_width"):
        for value in ("0", "-5", "100000"):
            cases.append(("%s %s" % (flag, value), ["--mode=eightbit", "--%s=%s" % (flag, value)]))
    for flag in ("input_mean", "input_std", "crop_fraction", "calibration_percentile",
                 "max_relative_error", "min_top1_agreement"):
        for value in _NUMBERS:
            cases.append(("%s %s" % (flag, value), ["--mode=eightbit", "--%s=%s" % (flag, value)]))
    for dims in ("0,8,8,3", "1,-8,8,3", "1,8,8,0", "1,8,8", "", "1,8,8,3:1,8,8,3", "1e3",
                 "99999999,8,8,3"):
        cases.append(("test_input_dims %r" % dims, ["--mode=test", "--test_input_dims=" + dims,
                                                    "--output="]))
    for flag in ("excluded_nodes", "input_node_names", "output_node_names"):
        for value in ("nothere", "conv,nothere", ",", "conv:1"):
            cases.append(("%s %s" % (flag, value), ["--mode=eightbit", "--%s=%s" % (flag, value)]))
    for flag in ("target", "mode", "calibration_method", "signature_def"):
        cases.append(("%s bogus" % flag, ["--%s=bogus" % flag]))
    for flag in ("report", "ranges_out"):
        for where in ("{tmp}/missing_dir/f.json", "{tmp}", "{input}"):
            cases.append(("%s %s" % (flag, where), ["--mode=eightbit", "--%s=%s" % (flag, where)]))
    cases.append(("ranges_in garbage", ["--mode=eightbit", "--ranges_in={input}"]))
    cases.append(("ranges_in missing", ["--mode=eightbit", "--ranges_in={tmp}/none.json"]))
    return cases


# ---- calibration arrays ---------------------------------------------------------------------

def calibration_cases(shape):
    """[(label, {file name: bytes or array})]: wrong shape, rank, dtype, values, corrupt files.
    An array is saved as the .npy / .npz named; bytes are written as they are."""
    good = np.random.default_rng(0).uniform(0, 1, (4,) + tuple(shape[1:])).astype(np.float32)
    nan, inf = good.copy(), good.copy()
    nan.flat[3] = np.nan
    inf.flat[5] = -np.inf
    arrays = {
        "wrong shape": good[:, :2], "wrong rank": good[0], "scalar": np.float32(1),
        "empty": good[:0], "complex": good.astype(np.complex64), "strings": good.astype(str),
        "bool": good > 0.5, "nan": nan, "inf": inf, "float64": good.astype(np.float64),
        "int8": (good * 100).astype(np.int8), "extra rank": good[..., None],
    }
    cases = [(label, {"data.npy": a}) for label, a in arrays.items()]
    cases.append(("object", {"data.npy": np.array([None, 1], dtype=object)}))
    npz = _npz_bytes(good)
    cases += [
        ("npz truncated", {"data.npz": npz[: len(npz) // 2]}),
        ("npz corrupt member", {"data.npz": npz[:60] + bytes(40) + npz[100:]}),
        ("npy truncated", {"data.npy": _npy_bytes(good)[:100]}),
        ("npz wrong key", {"data.npz": {"nothere": good}}),
        ("random bytes", {"data.npy": np.random.default_rng(1).bytes(300)}),
        ("empty file", {"data.npz": b""}),
        ("folder without images", {"folder/readme.txt": b"no images"}),
        ("not an image", {"folder/a.jpg": b"not a jpeg"}),
    ]
    return cases


def _npz_bytes(array):
    import io
    buffer = io.BytesIO()
    np.savez(buffer, input=array)
    return buffer.getvalue()


def _npy_bytes(array):
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def finite(x):
    return isinstance(x, float) and math.isfinite(x)
