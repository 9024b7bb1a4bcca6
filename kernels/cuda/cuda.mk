# CUDA build of the Qg op library (included by the top-level Makefile; docs/cuda_build.md).
#
#   make cuda      TF-enabled GPU variant: build/cuda/_qg_ops_gpu.so, from the .cu launchers,
#                  every kernels/cc/*.cc and kernels/cc/*/*.cc (CPU kernels, op registrations,
#                  *_gpu.cc) built with -DGOOGLE_CUDA=1.
#   make gpu-test  launcher-only library build/cuda/libqg_cuda.so (no TensorFlow) and
#                  tools/gpu_test.py on it: exits 77 where there is no GPU.
#
# Needs nvcc (CUDA 12.8+ / 13; sm_75 is the oldest target nvcc 13 still builds) and, for
# `make cuda`, a Python with tensorflow for the headers and link flags (TF_PYTHON).

CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CXX ?= g++
TF_PYTHON ?= $(if $(wildcard $(VENV_PYTHON)),$(VENV_PYTHON),python3)
GPU_TEST_PYTHON ?= python3
GPU_TEST_ARGS ?=

CUDA_BUILD := build/cuda
CUDA_GENCODE := -gencode arch=compute_75,code=sm_75 \
                -gencode arch=compute_80,code=sm_80 \
                -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90
# --fmad=false and -ffp-contract=off: the epilogue's float math must not be contracted into FMA
# (OPS.md); the device code also spells it with __fmul_rn/__fadd_rn.
NVCC_FLAGS := -std=c++17 -O3 --fmad=false -Xcompiler -fPIC,-ffp-contract=off $(CUDA_GENCODE)
CUDA_LIBDIRS := $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib)
# Static cudart: the library then loads without libcudart.so.13 (e.g. into tensorflow-cpu here,
# or next to a framework that ships another CUDA runtime).
CUDA_LDLIBS := $(addprefix -L,$(CUDA_LIBDIRS)) -l:libcudart_static.a -ldl -lpthread -lrt

CU_SRCS := $(wildcard kernels/cuda/*.cu)
CU_HDRS := $(wildcard kernels/cuda/*.h kernels/cuda/*.cuh) kernels/cc/qg_shape.h
CU_OBJS := $(patsubst kernels/cuda/%.cu,$(CUDA_BUILD)/obj/%.o,$(CU_SRCS))
# gemm_check.cc is the standalone `make gemm-check` program (it has a main()), not library code.
CC_SRCS := $(filter-out kernels/cc/gemm/gemm_check.cc,$(wildcard kernels/cc/*.cc kernels/cc/*/*.cc))
CC_HDRS := $(wildcard kernels/cc/*.h kernels/cc/*/*.h)
CC_OBJS := $(patsubst kernels/cc/%.cc,$(CUDA_BUILD)/obj/cc/%.o,$(CC_SRCS))
CUDA_SHIM := $(CUDA_BUILD)/include/third_party/gpus/cuda/include
TF_FLAGS_FILE := $(CUDA_BUILD)/tf_flags.mk

.PHONY: cuda cuda-launchers gpu-test

cuda: $(CUDA_BUILD)/_qg_ops_gpu.so
cuda-launchers: $(CUDA_BUILD)/libqg_cuda.so

gpu-test: $(CUDA_BUILD)/libqg_cuda.so
	$(GPU_TEST_PYTHON) tools/gpu_test.py --lib $(CUDA_BUILD)/libqg_cuda.so $(GPU_TEST_ARGS)

$(CUDA_BUILD)/obj/%.o: kernels/cuda/%.cu $(CU_HDRS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

$(CUDA_BUILD)/libqg_cuda.so: $(CU_OBJS)
	$(CXX) -shared -o $@ $^ $(CUDA_LDLIBS)

# tensorflow-cpu ships TF's GPU headers (gpu_kernel_helper.h, ...) but not the CUDA headers
# they include as "third_party/gpus/cuda/include/...": this directory link supplies them.
$(CUDA_SHIM):
	@mkdir -p $(dir $@)
	ln -sfn $(abspath $(CUDA_HOME))/include $@

# TF's compile and link flags, asked once (importing TF takes seconds).
$(TF_FLAGS_FILE):
	@mkdir -p $(@D)
	$(TF_PYTHON) -c "import tensorflow as tf; \
print('TF_CFLAGS := ' + ' '.join(tf.sysconfig.get_compile_flags())); \
print('TF_LFLAGS := ' + ' '.join(tf.sysconfig.get_link_flags()))" > $@.tmp
	mv $@.tmp $@

ifneq ($(filter cuda $(CUDA_BUILD)/_qg_ops_gpu.so $(CUDA_BUILD)/obj/cc/%,$(MAKECMDGOALS)),)
-include $(TF_FLAGS_FILE)
endif

# -I$(CUDA_BUILD)/include first: the shim; --param: silences GCC's interference-size warning in
# TF's Eigen headers (DESIGN.md).
TF_GPU_CXXFLAGS = -std=c++17 -O2 -fPIC -ffp-contract=off -DGOOGLE_CUDA=1 \
  -I$(CUDA_BUILD)/include -I. $(TF_CFLAGS) -I$(CUDA_HOME)/include \
  -Wno-deprecated-declarations --param destructive-interference-size=128 $(CPU_CXXFLAGS)

$(CUDA_BUILD)/obj/cc/%.o: kernels/cc/%.cc $(CC_HDRS) $(CU_HDRS) | $(TF_FLAGS_FILE) $(CUDA_SHIM)
	@mkdir -p $(@D)
	$(CXX) $(TF_GPU_CXXFLAGS) -c $< -o $@

$(CUDA_BUILD)/_qg_ops_gpu.so: $(CC_OBJS) $(CU_OBJS) | $(TF_FLAGS_FILE)
	$(CXX) -shared -o $@ $^ $(TF_LFLAGS) $(CUDA_LDLIBS)
