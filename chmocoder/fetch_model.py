"""`python -m chmocoder.fetch_model`: resolve CHMOCODER_MODEL into models_dir and exit.

Used where the model must be in place before the app starts: the Docker build (a model baked into
the image for air-gapped sites) and the Kubernetes init container. Exit status 2 with a one-line
reason when the model cannot be had or does not match its pinned hash.
"""

from __future__ import annotations

import sys

from .model_files import ModelResolutionError, resolve_model
from .settings import Settings


def main() -> int:
    settings = Settings()
    try:
        path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    except ModelResolutionError as exc:
        print(f"chmocoder: cannot fetch model: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
