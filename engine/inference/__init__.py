"""Inference: a trained checkpoint as a predictor, the backend registry (PyTorch here; ONNX
Runtime and TensorRT register from trt), views inside the model, and classify-many jobs."""
