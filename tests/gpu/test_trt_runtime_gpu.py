"""GPU-only: TensorRT engines run on CUDA, compared with PyTorch. Run with `pytest tests/gpu`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.datasets import open_dataset
from engine.inference.predictor import Predictor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)"),
]


@pytest.fixture(scope="module")
def engine_and_inputs(request, tmp_path_factory):
    from trt.builder import build_engine
    from trt.onnx_export import export_onnx
    from trt.runtime import tensorrt_unusable_reason

    why = tensorrt_unusable_reason()  # no library, or one that cannot run on this GPU
    if why:
        pytest.skip(why)
    # Only now: training the model is wasted time where TensorRT cannot run.
    run_dir, _ = request.getfixturevalue("mnist_lenet")
    mnist_sample_home = request.getfixturevalue("mnist_sample_home")
    out = tmp_path_factory.mktemp("gpu") / "model.onnx"
    export_onnx(run_dir, out, check_images=100, home=mnist_sample_home)
    engine = out.with_suffix(".engine")
    build_engine(out, engine, max_batch=256)
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    x = ds.contract.normalize(np.asarray(ds.images[ds.split("test")[:256]]))
    with torch.inference_mode():
        want = Predictor(run_dir).model(torch.from_numpy(x)).numpy()
    return engine, x, want


@pytest.mark.parametrize("batch", [1, 8, 37, 256])
def test_engine_matches_pytorch(engine_and_inputs, batch):
    from trt.runtime import TensorRTRunner

    engine, x, want = engine_and_inputs
    got = TensorRTRunner(engine).run(x[:batch])
    assert got.shape == (batch, 10)
    assert np.abs(got - want[:batch]).max() < 1e-2  # TF32 / tactic differences
    assert (got.argmax(1) == want[:batch].argmax(1)).mean() >= 0.99


def test_cuda_graph_path_equals_plain_path(engine_and_inputs):
    from trt.runtime import TensorRTRunner

    engine, x, _ = engine_and_inputs
    plain = TensorRTRunner(engine)
    graphed = TensorRTRunner(engine, cuda_graph=True)
    for i in range(5):  # first call captures, the rest replay with new inputs
        a = plain.run(x[i:i + 1])
        b = graphed.run(x[i:i + 1])
        assert np.allclose(a, b, atol=1e-5)
    assert graphed._graph is not None


def test_runner_tensor_path_stays_on_gpu(engine_and_inputs):
    from trt.runtime import TensorRTRunner

    engine, x, want = engine_and_inputs
    out = TensorRTRunner(engine).run_tensor(torch.from_numpy(x[:8]).cuda())
    assert out.is_cuda
    assert np.abs(out.cpu().numpy() - want[:8]).max() < 1e-2


def test_bundle_infer_uses_tensorrt(engine_and_inputs, mnist_lenet, mnist_sample_home,
                                    tmp_path):
    from PIL import Image

    from trt.bundle import Bundle, make_bundle

    engine, _, _ = engine_and_inputs
    out = make_bundle(mnist_lenet[0], tmp_path / "b.zip", engines=[engine],
                      home=mnist_sample_home)
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    i = int(ds.split("test")[0])
    png = tmp_path / "d.png"
    Image.fromarray(np.asarray(ds.images[i])[:, :, 0]).save(png)
    b = Bundle(out["bundle"])
    assert b.backend == "tensorrt"
    assert b.classify([str(png)])[0]["label"] == ds.classes[int(ds.labels[i])]


def test_index_less_device_offset_view_and_batches_over_the_profile(engine_and_inputs):
    from trt.runtime import TensorRTRunner

    engine, x, want = engine_and_inputs
    runner = TensorRTRunner(engine, device="cuda")  # torch 2.11: set_device needs an index
    base = torch.from_numpy(x[:9]).cuda()
    view = base[1:9]  # 3,136 bytes into its storage: not 256-byte aligned
    assert view.data_ptr() % 256 != 0
    got = runner.run_tensor(view).cpu().numpy()
    assert np.abs(got - want[1:9]).max() < 1e-2
    with pytest.raises(ValueError, match="over this engine's maximum of 256"):
        runner.run_tensor(torch.zeros(257, *x.shape[1:], device="cuda"))
    split = runner.run(np.concatenate([x, x[:5]]))  # 261 images: run() splits them
    assert split.shape == (261, 10)
    assert np.abs(split[256:] - want[:5]).max() < 1e-2
