"""Training: configuration, solvers, learning-rate policies, augmentation and the loop."""

from engine.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from engine.training.config import (
    LR_POLICIES,
    PRECISIONS,
    SOLVERS,
    AugmentConfig,
    ConfigError,
    TrainConfig,
)
from engine.training.schedules import lr_factor, lr_schedule
from engine.training.sink import FanoutSink, MetricsSink, RecordingSink
from engine.training.trainer import (
    TrainingDiverged,
    TrainResult,
    evaluate,
    network_spec,
    resolve_device,
    train,
)

__all__ = [
    "LR_POLICIES", "PRECISIONS", "SOLVERS", "AugmentConfig", "ConfigError", "FanoutSink",
    "MetricsSink", "RecordingSink", "TrainConfig", "TrainResult", "TrainingDiverged", "evaluate",
    "list_checkpoints", "load_checkpoint", "lr_factor", "lr_schedule", "network_spec",
    "resolve_device", "save_checkpoint", "train",
]
