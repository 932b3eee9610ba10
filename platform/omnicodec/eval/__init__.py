"""Evaluation: real-byte rates, human-view quality, per-task metrics, curves and reports."""
