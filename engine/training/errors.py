"""Training's own failure, importable without PyTorch (the CLI catches it before it trains)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""
