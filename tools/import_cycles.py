"""Lists the import cycles among quantize_graph's modules (exit 1 if there is one).

Every import counts, at module level or inside a function: a cycle hidden in a function is
still two modules that each need the other. A package's __init__ is not counted as imported
by its submodules (Python runs it first anyway).

  python tools/import_cycles.py
"""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_files(root=ROOT, package="quantize_graph"):
    """{module name: path} of every .py file under the package."""
    files = {}
    for folder, _, names in os.walk(os.path.join(root, package)):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                files[module[:-len(".__init__")] if module.endswith(".__init__") else module] = path
    return files


def imports(files):
    """{module: set of the package's modules it imports}."""
    graph = {}
    for module, path in files.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in files)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    full = base + "." + alias.name
                    found.add(full if full in files else base)
        graph[module] = {m for m in found if m in files and m != module}
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    graph = imports(module_files())
    found = cycles(graph)
    for component in found:
        print("cycle: " + ", ".join(component))
        for module in component:
            print("    %s -> %s" % (module, ", ".join(sorted(graph[module] & set(component)))))
    print("%d modules, %d import cycles" % (len(graph), len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
