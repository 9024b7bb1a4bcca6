"""The console-script entry shared by the tools: help, one-line errors, exit status."""
import sys

from absl import flags

from quantize_graph.errors import QuantizeGraphError


def define_preprocessing_flags(flag_values, default_size, default_crop):
    """The image preprocessing flags label_image and evaluate_graph share (as the calibration
    flags of quantize_graph): size, mean/std of the 0..255 pixels, central crop."""
    for dim in ("height", "width"):
        flags.DEFINE_integer("input_" + dim, None, "Image %s fed to the graph; default: the input's "
                             "static %s, else %d." % (dim, dim, default_size), lower_bound=1,
                             flag_values=flag_values)
    flags.DEFINE_float("input_mean", 0.0, "Subtracted from each 0..255 pixel value.",
                       flag_values=flag_values)
    flags.DEFINE_float("input_std", 255.0, "Divides each pixel value after the mean is subtracted.",
                       flag_values=flag_values)
    flags.DEFINE_float("crop_fraction", default_crop, "Central crop kept before resizing, in (0, 1]"
                       + ("." if default_crop else ", e.g. 0.875 as in Inception/MobileNet "
                          "evaluation; default: no crop."), flag_values=flag_values)


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
