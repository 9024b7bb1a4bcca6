"""tools/bench_conv_ops.py (our conv against oneDNN's, op by op): one small shape end to end,
its markdown rows and their ratio, in a child process as the tool is run."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_conv_ops_prints_a_row_per_shape_and_a_total():
    from tests.kernels_helpers import load_or_skip
    load_or_skip()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench_conv_ops.py"), "--only", "resnet 3x3 7x7",
         "--batch", "1", "--runs", "2", "--threads", "1"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    # header, the one shape, the total
    assert rows[0].startswith("| shape | qg wall | qg CPU | onednn wall")
    number = r"\d+\.\d+"
    shape = re.fullmatch(rf"\| resnet 3x3 7x7x512->512 \| ({number}) \| {number} \| "
                         rf"({number}) \| {number} \| ({number})x \|", rows[1])
    assert shape, rows[1]
    assert float(shape.group(1)) > 0 and float(shape.group(2)) > 0
    assert re.fullmatch(rf"\| all \| {number} \| {number} \| {number} \| {number} \| "
                        rf"{number}x \|", rows[2]), rows[2]
    assert len(rows) == 3
