"""Lists the import cycles among quantize_graph's modules. Exit 1 if there is one.

Imports inside functions count too (an import deferred to dodge a cycle is still a cycle),
and importing a.b.c counts as importing a.b (its __init__ runs first) unless a.b is a package
of the importing module itself.

  python tools/import_cycles.py
"""
import ast
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "quantize_graph")


def _modules():
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                yield (rel[:-len(".__init__")] if rel.endswith(".__init__") else rel), path


def _imports(module, path, known):
    """Modules of the package that `module` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
                parts = name.split(".")  # importing a.b.c runs a.b's __init__ first
                out.update(p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                           if p in known and not module.startswith(p + "."))
    return out


def main():
    modules = dict(_modules())
    # The root package's __init__ runs before any of its modules: not an edge of a cycle.
    graph = {m: _imports(m, p, modules) - {m, "quantize_graph"} for m, p in modules.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    for c in cycles:
        print(" -> ".join(c))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
