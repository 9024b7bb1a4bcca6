"""Runs the quantize_graph command line and counts what it feeds through TensorFlow: graph
runners opened, session runs, and examples fed, per runner (the float graph over the
calibration data shows as one runner whose examples equal the calibration size per pass).

  PYTHONPATH=. python tools/count_graph_runs.py --input=... --output=... --calibration_data=... [flags]
"""
import sys

from quantize_graph import runner

_runners = []
_init, _run = runner.GraphRunner.__init__, runner.GraphRunner.run


def _counting_init(self, graph_def, *args, **kwargs):
    _init(self, graph_def, *args, **kwargs)
    self._counts = {"nodes": len(graph_def.node), "runs": 0, "examples": 0}
    _runners.append(self._counts)


def _counting_run(self, outputs, feeds):
    self._counts["runs"] += 1
    self._counts["examples"] += min((len(v) for v in feeds.values()), default=0)
    return _run(self, outputs, feeds)


def main():
    runner.GraphRunner.__init__, runner.GraphRunner.run = _counting_init, _counting_run
    from quantize_graph import cli
    try:
        cli.run()
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    for i, c in enumerate(_runners):
        print("graph runner %d: %d nodes, %d session runs, %d examples fed"
              % (i + 1, c["nodes"], c["runs"], c["examples"]), file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
