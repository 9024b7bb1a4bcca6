"""Repository rule: TensorFlow's headers and framework library from the pip package.

Like tensorflow/custom-op's tf_configure: asks the Python in $PYTHON_BIN_PATH (default python3)
where `tf.sysconfig` keeps them and links them into the repository @local_config_tf.
"""

def _tf_configure_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH", "python3")
    result = ctx.execute(
        [python, "-c", "import tensorflow as tf; print(tf.sysconfig.get_include()); " +
                       "print(tf.sysconfig.get_lib())"],
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if result.return_code != 0:
        fail("cannot import tensorflow with %s (set PYTHON_BIN_PATH): %s" % (python, result.stderr))
    lines = result.stdout.strip().splitlines()
    include, lib = lines[-2], lines[-1]
    ctx.symlink(include, "include")
    ctx.symlink(lib + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    ctx.file("BUILD", """
cc_library(
    name = "tf_header_lib",
    hdrs = glob(["include/**/*.h", "include/**/*.inc", "include/third_party/eigen3/**",
                 "include/Eigen/**", "include/unsupported/**"]),
    includes = ["include"],
    defines = ["_GLIBCXX_USE_CXX11_ABI=1", "EIGEN_MAX_ALIGN_BYTES=64"],
    visibility = ["//visibility:public"],
)

cc_library(
    name = "libtensorflow_framework",
    srcs = ["libtensorflow_framework.so.2"],
    visibility = ["//visibility:public"],
)
""")

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
