"""Shared fixtures: real MNIST/Fashion-MNIST read through kdeep's loader (KDEEP_DATA_DIR in CI)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
