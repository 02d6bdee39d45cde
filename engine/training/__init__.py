"""Training: configuration, solvers, learning-rate policies, augmentation and the loop.

Names load on first use: `from engine.training import TrainConfig` does not import PyTorch,
so CLI commands that only read settings start fast."""

from engine.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "checkpoint": ("list_checkpoints", "load_checkpoint", "save_checkpoint"),
    "config": ("LR_POLICIES", "PRECISIONS", "SOLVERS", "AugmentConfig", "ConfigError",
               "TrainConfig"),
    "errors": ("TrainingDiverged",),
    "lr_finder": ("LRFinderResult", "find_lr", "range_test"),
    "schedules": ("lr_factor", "lr_schedule"),
    "sink": ("FanoutSink", "MetricsSink", "RecordingSink"),
    "trainer": ("TrainResult", "evaluate", "network_spec", "resolve_device", "train"),
})
