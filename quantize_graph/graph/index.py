"""A name index over a GraphDef: producers, consumers, validation and topological order."""
import collections
import difflib

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.names import node_name_from_input, split_input


class GraphIndex:
    """Read-only view of a GraphDef. Rebuild it after editing the graph."""

    def __init__(self, graph_def):
        self.graph_def = graph_def
        self.nodes = collections.OrderedDict()
        for node in graph_def.node:
            if node.name in self.nodes:
                raise QuantizeGraphError("duplicate node name '%s' in the graph" % node.name)
            self.nodes[node.name] = node
        self.consumers = collections.defaultdict(list)  # node name -> [(consumer, input index)]
        for node in graph_def.node:
            for i, inp in enumerate(node.input):
                self.consumers[node_name_from_input(inp)].append((node, i))

    def __contains__(self, name):
        return name in self.nodes

    def node(self, name_or_input):
        return self.nodes[node_name_from_input(name_or_input)]

    def get(self, name_or_input):
        return self.nodes.get(node_name_from_input(name_or_input))

    def data_consumers(self, name, port=None):
        """Consumers of node `name` through data (non-control) edges, optionally of one port."""
        out = []
        for consumer, i in self.consumers.get(name, []):
            src, p, control = split_input(consumer.input[i])
            if not control and (port is None or p == port):
                out.append((consumer, i))
        return out

    def require(self, names, what="node"):
        """Raises a one-line error, with close-name suggestions, for names not in the graph."""
        for name in names:
            if name not in self.nodes:
                close = difflib.get_close_matches(name, list(self.nodes), n=3, cutoff=0.6)
                hint = "; did you mean %s?" % ", ".join("'%s'" % c for c in close) if close else ""
                raise QuantizeGraphError("%s '%s' is not in the graph%s" % (what, name, hint))

    def validate(self):
        """Checks that every input names an existing node and that the graph has no cycle."""
        for node in self.graph_def.node:
            for inp in node.input:
                src = node_name_from_input(inp)
                if src not in self.nodes:
                    raise QuantizeGraphError(
                        "node '%s' has input '%s', which is not in the graph" % (node.name, inp))
        self.topological_order()

    def topological_order(self, outputs=None):
        """Names in an order where producers come first; limited to the ancestors of `outputs`.

        Iterative so that deep graphs do not hit Python's recursion limit. NextIteration
        back edges (tf.while loops) are ignored; any other cycle is an error.
        """
        roots = list(outputs) if outputs is not None else list(self.nodes)
        state = {}  # name -> 1 visiting, 2 done
        order = []
        for root in roots:
            if state.get(root) == 2:
                continue
            stack = [(root, iter(self._deps(root)))]
            state[root] = 1
            while stack:
                name, it = stack[-1]
                advanced = False
                for dep in it:
                    s = state.get(dep)
                    if s == 1:
                        raise QuantizeGraphError(
                            "the graph has a cycle through node '%s'" % dep)
                    if s is None:
                        state[dep] = 1
                        stack.append((dep, iter(self._deps(dep))))
                        advanced = True
                        break
                if not advanced:
                    stack.pop()
                    state[name] = 2
                    order.append(name)
        return order

    def _deps(self, name):
        node = self.nodes[name]
        if node.op == "NextIteration":
            return []
        return [node_name_from_input(i) for i in node.input if node_name_from_input(i) in self.nodes]
