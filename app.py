"""Start ChMOCoder: `python app.py` (also what a Hugging Face Space runs)."""

import logging
import sys

import uvicorn

from chmocoder.graceful import GracefulServer
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
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    GracefulServer(app, config, settings.shutdown_grace_s).run_until_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(main())
