"""No module of the package imports, directly or through others (imports inside functions and
package __init__s included), a module that imports it: tools/import_cycles.py finds none."""
import os
import subprocess
import sys

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "import_cycles.py")


def test_no_import_cycles():
    proc = subprocess.run([sys.executable, TOOL], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout
