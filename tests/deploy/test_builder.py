"""Real TensorRT engines, built ahead of time on this machine (tensorrt_rtx needs no GPU)."""

from __future__ import annotations

import json

import pytest

from engine.datasets import open_dataset
from trt.builder import EngineBuildError, build_engine
from trt.layout import PRECISIONS, variant_path
from trt.onnx_export import export_onnx
from trt.runtime import NeedsGPU, TensorRTRunner
from trt.variants import calibration_batch, make_variants, to_int8

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")


@pytest.fixture(scope="module")
def graphs(mnist_lenet, mnist_sample_home, tmp_path_factory):
    """The LeNet export and its fp16/int8 variants."""
    run_dir, _ = mnist_lenet
    out = tmp_path_factory.mktemp("engines") / "model.onnx"
    export_onnx(run_dir, out, check_images=100, home=mnist_sample_home)
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    make_variants(out, ds, precisions=["fp16", "int8"])
    return out


@pytest.fixture(scope="module")
def built(graphs):
    """Every precision the builder accepts, built with one shared timing cache."""
    cache = graphs.parent / "timing.cache"
    results = {}
    for precision in PRECISIONS:
        calls: list[tuple[float, str]] = []
        engine = graphs.with_name(f"model-{precision}.engine")
        meta = build_engine(variant_path(graphs, precision), engine, max_batch=64,
                            timing_cache=cache, progress=lambda f, m, c=calls: c.append((f, m)))
        results[precision] = (engine, meta, calls)
    return results, cache


@pytest.mark.parametrize("precision", PRECISIONS)
def test_engine_built_with_metadata(built, graphs, precision):
    results, _ = built
    engine, meta, _ = results[precision]
    assert engine.stat().st_size == meta["engine_size_bytes"] > 0
    assert meta["library"] in ("tensorrt", "tensorrt_rtx") and meta["version"]
    assert meta["precision"] == precision
    assert meta["profile"] == {"min_batch": 1, "opt_batch": 8, "max_batch": 64}
    assert meta["inputs"] == [{"name": "input", "shape": [-1, 1, 28, 28], "dtype": "FLOAT"}]
    assert meta["outputs"] == [{"name": "logits", "shape": [-1, 10], "dtype": "FLOAT"}]
    assert len(meta["onnx_sha256"]) == 64 and meta["build_time_s"] > 0
    assert json.loads(engine.with_name(engine.name + ".json").read_text()) == meta


def test_progress_callback_reports_rising_fractions(built):
    results, _ = built
    calls = results["fp32"][2]
    assert len(calls) > 3
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in calls)


def test_timing_cache_created_then_loaded(built):
    results, cache = built
    assert cache.exists() and cache.stat().st_size > 0
    first, later = results["fp32"][1]["timing_cache"], results["int8"][1]["timing_cache"]
    assert first["loaded_bytes"] == 0 and not first["reused"]
    assert later["loaded_bytes"] == cache.stat().st_size
    if results["int8"][1]["library"] == "tensorrt_rtx":
        # tensorrt_rtx takes the calls but ignores timing caches; its own words say so.
        assert not later["reused"]
        assert any("timing cache" in m.lower() for m in later["library_messages"])
    else:
        assert later["reused"]


def test_int32_bias_qdq_is_refused_with_the_parsers_reason(graphs, mnist_sample_home, tmp_path):
    """ONNX Runtime's default QDQ quantizes biases to int32, which TensorRT's parser refuses;
    the error carries the parser's own text."""
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    bias_q = to_int8(graphs, tmp_path / "bias-int32.onnx", calibration_batch(ds, 64),
                     quantize_bias=True)
    with pytest.raises(EngineBuildError) as err:
        build_engine(bias_q, tmp_path / "bias-int32.engine")
    text = str(err.value)
    assert "could not parse" in text
    assert "DequantizeLinear" in text and "Int32" in text
    assert any("Int32" in m for m in err.value.messages)


def test_truncated_onnx_gives_parser_messages(graphs, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(graphs.read_bytes()[:5000])
    with pytest.raises(EngineBuildError) as err:
        build_engine(bad, tmp_path / "broken.engine")
    assert "could not parse broken.onnx" in str(err.value)
    # The parser's own words (its errors and what it logged), not ours.
    assert any("Failed to parse the ONNX model" in m for m in err.value.messages)
    assert "Failed to parse the ONNX model" in str(err.value)
    assert not (tmp_path / "broken.engine").exists()


def test_garbage_file_is_not_a_model(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(EngineBuildError, match="could not parse garbage.onnx"):
        build_engine(bad, tmp_path / "garbage.engine")


def test_bad_profile_is_a_value_error(graphs, tmp_path):
    with pytest.raises(ValueError, match="min <= opt <= max"):
        build_engine(graphs, tmp_path / "x.engine", min_batch=8, opt_batch=4, max_batch=16)


def test_runtime_without_gpu_says_it_needs_one(built):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: tests/gpu covers the runtime")
    engine = built[0]["fp32"][0]
    with pytest.raises(NeedsGPU, match="needs an NVIDIA GPU"):
        TensorRTRunner(engine)


def test_engine_load_failure_names_the_gpu_and_the_cause():
    from trt.runtime import deserialize_error

    h200 = deserialize_error("tensorrt_rtx", "/x/model.engine", "NVIDIA H200", (9, 0),
                             ["ERROR: unsupported SM", "ERROR: unsupported SM"])
    assert h200.splitlines()[0] == ("tensorrt_rtx could not load model.engine on NVIDIA H200 "
                                    "(compute capability 9.0)")
    assert "not 9.0" in h200 and "data-centre `tensorrt`" in h200
    assert h200.count("unsupported SM") == 1  # the library's own words, once
    rtx = deserialize_error("tensorrt_rtx", "m.engine", "NVIDIA RTX 4090", (8, 9), [])
    assert "not 8.9" not in rtx and "rebuild it here" in rtx
    dc = deserialize_error("tensorrt", "m.engine", "NVIDIA H200", (9, 0), ["ERROR: version"])
    assert "rebuild it here" in dc and "ERROR: version" in dc
