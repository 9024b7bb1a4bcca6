"""No module of the package imports, directly or through others, a module that imports it."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

import import_cycles  # noqa: E402


def test_no_import_cycles():
    assert import_cycles.cycles(import_cycles.imports(import_cycles.module_files())) == []


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles.cycles(graph) == [["a", "b", "c"]]
