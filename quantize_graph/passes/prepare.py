"""The prepare stage (float -> float): strip training nodes, fold constants and batch norms."""
from quantize_graph.statistics.batch_norm import batch_norm_moments
from quantize_graph.passes.fold_batch_norms import fold_batch_norms
from quantize_graph.passes.fold_constants import fold_constants
from quantize_graph.passes.prune import prune
from quantize_graph.passes.strip_training import strip_training_nodes
from quantize_graph.passes.context import result


def prepare(graph_def, input_names, output_names, fold=True):
    return prepare_recording_moments(graph_def, input_names, output_names, fold)[0]


def prepare_recording_moments(graph_def, input_names, output_names, fold=True):
    """(prepared graph, {batch norm output name: ChannelMoments}): the batch norms' output
    statistics are read before constant folding merges their parameters. `fold=False` keeps
    constant subgraphs (the original module's GraphRewriter quantized them, Consts stored as
    quint8, instead of folding them into one float Const)."""
    protected = list(input_names) + list(output_names)
    g = strip_training_nodes(graph_def, protected)
    g = prune(g, output_names, keep=input_names)
    moments = batch_norm_moments(g)
    if fold:
        g = fold_constants(g, protected=output_names)
    g = fold_batch_norms(g, protected=output_names)
    return prune(g, output_names, keep=input_names), moments


def run(graph_def, ctx):
    """The pass: facts `moments` (the batch norms' output statistics)."""
    g, moments = prepare_recording_moments(graph_def, ctx.inputs, ctx.outputs,
                                           fold=ctx.options.fold_constants)
    return result(g, moments=moments)
