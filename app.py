"""Start ChMOCoder: `python app.py` (also what a Hugging Face Space runs)."""

import logging
import sys

import uvicorn

from chmocoder.model_files import ModelResolutionError
from chmocoder.server import create_app
from chmocoder.settings import Settings


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = create_app(settings)
    except ModelResolutionError as exc:
        print(f"chmocoder: cannot start: model: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"chmocoder: cannot start: {exc}", file=sys.stderr)
        return 2
    print(f"ChMOCoder is ready: http://{settings.host}:{settings.port}{settings.root_path}/", flush=True)
    # Open streams (browsers, gradio_client heartbeats) must not hold a shutdown for long.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
