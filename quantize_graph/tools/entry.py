"""The console-script entry shared by the tools: help, one-line errors, exit status."""
import sys

from absl import flags

from quantize_graph.errors import QuantizeGraphError


def run_tool(prog, usage, flag_values, main, argv=None):
    """Runs main(argv); user errors become `<prog>: error: <one line>` and status 1."""
    argv = sys.argv if argv is None else argv
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print("usage: %s %s\n\n%s" % (prog, usage, flag_values.get_help(include_special_flags=False)))
        return 0
    try:
        main(argv)
    except (QuantizeGraphError, flags.Error) as e:
        message = str(e).strip().splitlines()
        print("%s: error: %s" % (prog, message[0] if message else type(e).__name__), file=sys.stderr)
        return 1
    return 0
