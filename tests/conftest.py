"""Shared test set-up: offline Hugging Face libraries and the CI skip policy (tests/ci_policy.py)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["tests.ci_policy"]
