"""ChMOCoder: a self-hosted coding-assistant chat on a local GGUF model."""

import os

# Nothing in this app may phone home; these must be set before gradio / huggingface_hub import.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
