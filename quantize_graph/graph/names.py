"""Tensor/node name helpers, with the same behaviour as the original quantize_graph.py."""
import re

_PORT_RE = re.compile(r"^(.*):(\d+)$")


def node_name_from_input(node_name):
    """Strips the ^ (control) prefix and the :port suffix from an input name."""
    if node_name.startswith("^"):
        node_name = node_name[1:]
    m = _PORT_RE.match(node_name)
    if m:
        node_name = m.group(1)
    return node_name


def unique_node_name_from_input(node_name):
    """Turns an input name ("a/b:1", "^c") into a string usable inside a node name."""
    return node_name.replace(":", "__port__").replace("^", "__hat__")


def ensure_tensor_name_has_port(node_name):
    """Makes sure a tensor name has a port, adding ":0" if it has none."""
    m = re.search(r"(.*):\d+$", node_name)
    if m:
        name_with_port = node_name
    else:
        name_with_port = node_name + ":0"
    return name_with_port


def split_input(inp):
    """Splits an input string into (node name, output port, is_control)."""
    if inp.startswith("^"):
        return inp[1:], -1, True
    m = _PORT_RE.match(inp)
    if m:
        return m.group(1), int(m.group(2)), False
    return inp, 0, False


def tensor_name(node, port=0):
    """The canonical GraphDef input string for output `port` of node `node`."""
    return node if port == 0 else "%s:%d" % (node, port)


def canonical_input(inp):
    """Normalises "a:0" to "a" so that inputs compare equal however they were spelled."""
    name, port, control = split_input(inp)
    return "^" + name if control else tensor_name(name, port)


def strip_output_names(names):
    """Parses --output_node_names: comma separated, a ":0" suffix tolerated, blanks dropped."""
    if isinstance(names, str):
        names = names.split(",")
    out = []
    for n in names:
        n = n.strip()
        if not n:
            continue
        name, port, _ = split_input(n)
        out.append(name if port == 0 else n)
    return out
