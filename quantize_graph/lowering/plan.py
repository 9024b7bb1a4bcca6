"""The plan of a fused lowering: per group, emit it or keep it float (with the reason), and how
each tensor it reads or writes is held in 8 bits. Immutable once made; the emitters only carry
it out (ops/<pattern>.py: plan_<target> decides, emit_<target> emits).

Planning walks the groups in the order they are emitted and keeps, in a PlanState, the 8-bit
form every tensor will have by then (a tensor quantized once is read in that form by every
later reader; a result is read in the form its group writes), so that each decision sees what
the emitter will find.
"""
import dataclasses
from typing import Optional, Tuple

from quantize_graph.graph.names import canonical_input

ZERO_AT_0 = "zero_at_0"   # quint8, code 0 is 0.0, range [0, hi] (onednn activations)
SYMMETRIC = "symmetric"   # qint8 over [-hi, hi] (onednn conv without activation)
OFFSET = "offset"         # quint8 MIN_FIRST codes over [lo, hi], read as [0, hi - lo] (onednn)
AFFINE = "affine"         # quint8 with a zero point over [lo, hi], 0.0 a code (kernels)
FLOAT = "float"           # a float result (logits)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    tensor: str                          # the float tensor, as the graph names it
    scheme: str                          # one of the schemes above
    lo: float
    hi: float                            # the largest magnitude for ZERO_AT_0 / SYMMETRIC
    shared_with: Optional[str] = None    # the Concat whose range a result is written at


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    per_channel: bool                    # else one scale for the tensor
    pair_limited: bool                   # same-sign pairs along K within 128 (int16 pair sums)


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    group: object                        # a graph/patterns group
    float_reason: Optional[str] = None   # None: emitted
    inputs: Tuple[TensorSpec, ...] = ()  # the data inputs (a conv's after pad folding; a concat's values)
    summand: Optional[TensorSpec] = None
    output: Optional[TensorSpec] = None
    weights: Optional[WeightSpec] = None
    folded_pad: bool = False             # the conv reads its Pad's input with padding SAME

    @property
    def emitted(self):
        return self.float_reason is None


def keep_float(group, reason):
    return GroupPlan(group, float_reason=reason)


class PlanState:
    """The 8-bit form each tensor will have when the next group is emitted."""

    def __init__(self, ctx):
        self.ctx = ctx                   # the EmitContext, read only while planning
        self.specs = {}                  # float tensor -> TensorSpec (quantized or produced)
        self.offset_specs = {}           # float tensor -> TensorSpec (OFFSET)
        self.produced = set()            # tensors an int8 op writes

    def record(self, key, spec):
        """`spec` is how tensor `key` (canonical name) is quantized from now on."""
        self.specs[key] = spec
        return spec

    def produce(self, spec):
        """`spec` is how a group writes its result (spec.tensor, a node name)."""
        self.specs[spec.tensor] = spec
        self.produced.add(spec.tensor)
        return spec

    def already_int8(self, inp):
        """True if an int8 op writes this tensor (no quantize needed): a reshape of a float
        tensor (say, the probabilities after Softmax) would only round it."""
        return canonical_input(inp) in self.produced
