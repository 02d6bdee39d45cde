"""Deployment: ONNX export, precision variants, TensorRT engines, runtimes, bundles, benchmarks.

Imports engine/, never the other way round; no Streamlit. TensorRT (`tensorrt`, else
`tensorrt_rtx`) is imported only when an engine is built or run.
"""

from trt.builder import EngineBuildError, build_engine
from trt.bundle import Bundle, make_bundle
from trt.layout import PRECISIONS
from trt.library import NoTensorRT, tensorrt_available
from trt.onnx_export import export_onnx
from trt.runtime import NeedsGPU, OnnxRunner, TensorRTRunner
from trt.variants import make_variants, measure_accuracy

__all__ = [
    "PRECISIONS",
    "Bundle",
    "EngineBuildError",
    "NeedsGPU",
    "NoTensorRT",
    "OnnxRunner",
    "TensorRTRunner",
    "build_engine",
    "export_onnx",
    "make_bundle",
    "make_variants",
    "measure_accuracy",
    "tensorrt_available",
]
