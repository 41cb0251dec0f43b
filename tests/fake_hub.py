"""A stand-in for the Hugging Face Hub (unreachable from here): serves files over local HTTP.

It answers `/{owner}/{repo}/resolve/{revision}/{file}` the way huggingface_hub expects
(X-Repo-Commit, ETag, Content-Length, X-Error-Code on 404), so the real hf_hub_download runs.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, port: int) -> None:
        self.port = port
        self.files: dict[tuple[str, str], bytes] = {}
        self.downloads: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _route(self, send_body: bool) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    self._missing("RepoNotFound")
                    return
                repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                if not any(r == repo for r, _ in hub.files):
                    self._missing("RepoNotFound")
                    return
                body = hub.files.get((repo, filename))
                if body is None:
                    self._missing("EntryNotFound")
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    hub.downloads.append(f"{repo}:{filename}")
                    self.wfile.write(body)

            def _missing(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                self._route(send_body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._route(send_body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
