"""Measuring trained models: evaluation of a checkpoint on a split (evaluate) and probe boards
of the user's own images scored across experiments (probes)."""
