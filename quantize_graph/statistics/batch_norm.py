"""Each batch norm's per-channel output mean and variance, read before the prepare stage folds
it away.

An inference batch norm computes y = gamma * (x - mean) / sqrt(var + eps) + beta with the
moving mean and variance of x. Where those describe the data (a trained net), y has mean beta
and variance gamma^2 * var / (var + eps) per channel: a range source that needs no data.

Forms read: FusedBatchNorm/V2/V3 (inference), BatchNormWithGlobalNormalization, and the
decomposed form of Keras and TF-slim graphs, where mean, variance, gamma and beta are still
separate Consts (possibly behind Reshape) before constant folding:

    m = Rsqrt(var + eps) [* gamma]            (no gamma: Keras' scale=False)
    y = x * m + (beta - mean * m)             (Add/AddV2 of a Mul and a Sub)

The result is keyed by the batch norm's output node name, which the folding keeps (the folded
BiasAdd is named after it).
"""
import dataclasses

import numpy as np

from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, split_input
from quantize_graph.graph.nodes import const_value

_FUSED = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_ADDS = {"Add", "AddV2"}


@dataclasses.dataclass(frozen=True)
class ChannelMoments:
    """Per-channel mean and variance of a tensor (last axis); arrays of one length."""
    mean: np.ndarray
    var: np.ndarray


def batch_norm_moments(graph_def):
    """{batch norm output node name: ChannelMoments} for every batch norm the graph carries
    (run after strip_training, before fold_constants)."""
    index = GraphIndex(graph_def)
    values = _ConstEvaluator(index)
    found = {}
    for node in graph_def.node:
        params = _read(node, index, values)
        if params is not None:
            found[node.name] = _output_moments(*params)
    return found


def _output_moments(gamma, beta, var, eps):
    """gamma, beta, var: per-channel (or scalar) arrays; eps a scalar."""
    gamma, beta, var = (np.asarray(a, np.float64).reshape(-1) for a in (gamma, beta, var))
    channels = max(gamma.size, beta.size, var.size)
    gamma, beta, var = (np.broadcast_to(a, [channels]) for a in (gamma, beta, var))
    out_var = gamma ** 2 * var / np.maximum(var + float(eps), 1e-30)
    return ChannelMoments(beta.astype(np.float64).copy(), out_var.copy())


def _read(node, index, values):
    """(gamma, beta, var, eps) of an inference batch norm node, else None."""
    if node.op in _FUSED:
        if node.attr["is_training"].b or node.attr["data_format"].s not in (b"", b"NHWC"):
            return None
        gamma, beta, _, var = (values(node.input[i]) if i < len(node.input) else None
                               for i in (1, 2, 3, 4))
        if any(v is None for v in (gamma, beta, var)):
            return None
        return gamma, beta, var, node.attr["epsilon"].f
    if node.op == "BatchNormWithGlobalNormalization":
        _, var, beta, gamma = (values(node.input[i]) for i in (1, 2, 3, 4))
        if var is None or beta is None or gamma is None:
            return None
        if not node.attr["scale_after_normalization"].b:
            gamma = np.ones_like(var)
        return gamma, beta, var, node.attr["variance_epsilon"].f
    if node.op in _ADDS:
        return _read_decomposed(node, index, values)
    return None


def _read_decomposed(add, index, values):
    data = [i for i in add.input if not i.startswith("^")]
    if len(data) != 2:
        return None
    for scaled_in, shift_in in (data, data[::-1]):
        scaled, shift = index.get(scaled_in), index.get(shift_in)
        if scaled is None or shift is None or scaled.op != "Mul" or shift.op != "Sub":
            continue
        m = _scale_operand(scaled, values)
        if m is None:
            continue
        beta = values(shift.input[0])
        mean_times_m = index.get(shift.input[1])
        if beta is None or mean_times_m is None or mean_times_m.op != "Mul":
            continue
        if canonical_input(m) not in {canonical_input(i) for i in mean_times_m.input}:
            continue  # the shift must use the same scale tensor as the data
        parts = _scale_parts(index.get(m), index, values)
        if parts is not None:
            gamma, var, eps = parts
            return gamma, beta, var, eps
    return None


def _scale_operand(mul, values):
    """The constant operand of `x * m` whose other operand is not constant, else None."""
    a, b = mul.input[0], mul.input[1]
    if values(b) is not None and values(a) is None:
        return b
    if values(a) is not None and values(b) is None:
        return a
    return None


def _scale_parts(m, index, values):
    """(gamma, var, eps) of m = Rsqrt(var + eps) [* gamma]."""
    if m is None:
        return None
    gamma = np.array(1.0)
    if m.op == "Mul":
        for r_in, g_in in ((m.input[0], m.input[1]), (m.input[1], m.input[0])):
            r = index.get(r_in)
            if r is not None and r.op == "Rsqrt" and values(g_in) is not None:
                m, gamma = r, values(g_in)
                break
        else:
            return None
    if m.op != "Rsqrt":
        return None
    add = index.get(m.input[0])
    if add is None or add.op not in _ADDS:
        return None
    a, b = values(add.input[0]), values(add.input[1])
    if a is None or b is None:
        return None
    # epsilon is the scalar; the variance the per-channel operand (both scalar: a 1-channel
    # batch norm, and Keras and slim both write the variance first).
    var, eps = (a, b) if b.size == 1 else (b, a)
    if eps.size != 1:
        return None
    return gamma, var, float(eps.reshape(()))


class _ConstEvaluator:
    """Values of tensors computed from Consts alone through the few ops that batch-norm
    parameters pass on their way (Identity, Reshape, Cast, arithmetic), in NumPy; None for
    anything else."""

    _UNARY = {"Identity": lambda x: x, "Rsqrt": lambda x: 1.0 / np.sqrt(x), "Sqrt": np.sqrt,
              "Reciprocal": lambda x: 1.0 / x, "Squeeze": np.squeeze, "Cast": lambda x: x}
    _BINARY = {"Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
               "RealDiv": np.divide}

    def __init__(self, index):
        self.index = index
        self.cache = {}

    def __call__(self, inp):
        name, port, control = split_input(inp)
        if control or port != 0:
            return None
        if name not in self.cache:
            self.cache[name] = None  # a cycle evaluates to unknown
            self.cache[name] = self._evaluate(self.index.get(name))
        return self.cache[name]

    def _evaluate(self, node):
        if node is None:
            return None
        if node.op == "Const":
            value = const_value(node)
            return value.astype(np.float64) if value.dtype.kind == "f" else None
        data = [i for i in node.input if not i.startswith("^")]
        if node.op == "Reshape":
            data = data[:1]  # per-channel vectors: only the values matter, not the shape
        args = [self(i) for i in data]
        if not args or any(a is None for a in args):
            return None
        with np.errstate(all="ignore"):
            if node.op in self._UNARY and args:
                return np.asarray(self._UNARY[node.op](args[0]), np.float64)
            if node.op in self._BINARY and len(args) == 2:
                return np.asarray(self._BINARY[node.op](args[0], args[1]), np.float64)
            if node.op == "Reshape":
                return args[0].reshape(-1)
        return None
