"""`python -m trt serve`: an inference server for a bundle (KServe v2 protocol + /classify),
with dynamic batching. See trt.serve.app for the routes and trt.serve.batcher for batching."""

from trt.serve.app import ServeConfig, create_app
from trt.serve.model import ServedModel

__all__ = ["ServeConfig", "ServedModel", "create_app"]
