"""Whether this CPU computes bfloat16 natively, and the one-line warning when it does not.

oneDNN runs bfloat16 convolutions and matmuls on AVX512-BF16 (Cooper Lake, Zen 4/5) or AMX
(Sapphire Rapids and later) units; elsewhere TensorFlow emulates them through float32, which
is correct but slower than running the float graph. Every tool that runs a graph (through
`runner.GraphRunner`) and quantize_graph itself call `warn_if_emulated`.
"""
import sys

from tensorflow.core.framework import types_pb2

# /proc/cpuinfo flags of a native bfloat16 unit: x86 AVX512-BF16 or AMX-BF16; aarch64 BF16.
NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
EMULATED_WARNING = ("warning: this CPU has no AVX512-BF16 or AMX-BF16 units: bfloat16 ops are "
                    "emulated (slow); the results are still correct")

_warned = False  # once per process: a tool may import several graphs


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (x86 `flags`, aarch64 `Features`); empty where unknown."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def has_native_bf16(flags=None):
    """`flags`: a set of CPU flags to judge instead of this CPU's (tests inject them)."""
    return bool(set(cpu_flags() if flags is None else flags) & set(NATIVE_FLAGS))


def uses_bfloat16(graph_def):
    bf16 = types_pb2.DT_BFLOAT16
    return any(attr.type == bf16 for node in graph_def.node for attr in node.attr.values())


def warn_if_emulated(graph_def=None, stream=None, flags=None):
    """Prints EMULATED_WARNING once per process when `graph_def` (None: a bfloat16 graph about
    to be written) uses bfloat16 and this CPU has no native unit; returns whether it warned."""
    global _warned
    if _warned or (graph_def is not None and not uses_bfloat16(graph_def)) or has_native_bf16(flags):
        return False
    _warned = True
    print(EMULATED_WARNING, file=stream or sys.stderr)
    return True
