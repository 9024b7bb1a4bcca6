"""The one signature of a pass: `run(graph_def, ctx) -> PassResult`.

A pass reads the graph and a frozen PassContext (what the pipeline knows at that point) and
returns a new graph plus the facts it found beside it (by name, e.g. the batch-norm moments
`prepare` records, the activations range equalization scaled); it never changes either input.
The pipeline builds the context once per stage with `dataclasses.replace`.
"""
import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class PassContext:
    inputs: tuple = ()                    # graph input node names
    outputs: tuple = ()                   # output node names
    options: object = None                # pipeline.Options (mode, bitdepth, excluded_*, ...)
    quantized: frozenset = frozenset()    # nodes annotate chose for 8 bits (empty before it)
    calibration: dict = None              # {input name: array}: the calibration part, if any
    statistics: object = None             # statistics/sources.Statistics, once collected
    moments: dict = None                  # {batch norm: ChannelMoments} prepare recorded
    only: frozenset = None                # restrict the pass to these nodes (None: all)


@dataclasses.dataclass(frozen=True)
class PassResult:
    graph_def: object                     # the new GraphDef
    facts: types.MappingProxyType = dataclasses.field(      # what the pass found, by name
        default_factory=lambda: types.MappingProxyType({}))


def result(graph_def, **facts):
    return PassResult(graph_def, types.MappingProxyType(facts))
