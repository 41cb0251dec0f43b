"""The code sandbox, for real: what runs in it cannot reach the network, the host's files, the app's
environment or other programs, and a run is stopped at its time, memory and output limits."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import pytest

from chmocoder.sandbox import Sandbox
from chmocoder.settings import PROJECT_ROOT

SECRETS = {"CHMOCODER_API_KEY": "key-that-must-not-leak", "REDIS_PASSWORD": "password-that-must-not-leak"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    saved = {name: os.environ.get(name) for name in SECRETS}
    os.environ.update(SECRETS)  # set in the app's process, as a deployment would
    box = Sandbox(workers=2, time_limit_s=3.0, memory_mb=400, output_chars=5_000).start()
    assert box.wait_ready(60), box.reason
    yield box
    box.close()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture()
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"secret page")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_code_runs_and_reports_like_python(sandbox: Sandbox) -> None:
    ok = sandbox.run("import sys\nprint(sum(range(10)))\nprint('warn', file=sys.stderr)")
    assert (ok.status, ok.exit_code, ok.stdout, ok.stderr) == ("ok", 0, "45\n", "warn\n")
    crash = sandbox.run("def f():\n    return 1 / 0\nf()")
    assert crash.status == "error" and crash.exit_code == 1
    assert crash.stderr.startswith('Traceback (most recent call last):\n  File "main.py", line 3')
    assert crash.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert sandbox.run("raise SystemExit(3)").exit_code == 3
    assert "EOFError" in sandbox.run("input('name? ')").stderr, "input() ends at once instead of hanging"
    awaited = sandbox.run(
        "import asyncio\nasync def main():\n    await asyncio.sleep(0.01)\n    return 7\nprint(asyncio.run(main()))"
    )
    assert awaited.stdout == "7\n", "answers that use asyncio run as they would in CPython"


def test_no_network(sandbox: Sandbox, web_server: tuple[str, list[str]]) -> None:
    url, seen = web_server
    host, port = url.removeprefix("http://").split(":")
    attempts = {
        "urllib": f"import urllib.request\nprint(urllib.request.urlopen({url!r}, timeout=2).read())",
        "socket": f"import socket\nsocket.create_connection(({host!r}, {port}), timeout=2).send(b'GET / HTTP/1.0')",
        "pyfetch": f"import asyncio, pyodide.http\nprint(asyncio.run(pyodide.http.pyfetch({url!r})))",
        "js.fetch": f"import js, asyncio\nasync def go():\n    print(await js.fetch({url!r}))\nasyncio.run(go())",
        "XMLHttpRequest": f"from pyodide.http import open_url\nprint(open_url({url!r}).read())",
    }
    for how, code in attempts.items():
        result = sandbox.run(code)
        assert "secret page" not in result.stdout, how
        assert result.status == "error", f"{how}: {result}"
        if how in ("pyfetch", "js.fetch"):  # JavaScript's fetch is refused by Deno's permissions
            assert "Requires net access" in result.stderr, f"{how}: {result.stderr}"
    assert seen == [], "the server never saw a request"


def test_no_host_files(sandbox: Sandbox, tmp_path: os.PathLike[str]) -> None:
    data = PROJECT_ROOT / "data"
    data.mkdir(exist_ok=True)
    (data / "sandbox-probe.txt").write_text("private chat data")
    targets = ["/etc/passwd", str(data / "sandbox-probe.txt"), str(PROJECT_ROOT / "chmocoder" / "settings.py")]
    try:
        for path in targets:
            for code in (
                f"print(open({path!r}).read())",
                f"import js\nprint(js.Deno.readTextFileSync({path!r}))",
            ):
                result = sandbox.run(code)
                assert result.status == "error" and result.stdout == "", f"{code}: {result}"
        listing = sandbox.run("import os\nprint(os.listdir('/'))\nprint(os.path.exists('/etc/passwd'))")
        assert "work" not in listing.stdout and listing.stdout.endswith("False\n"), listing.stdout
    finally:
        (data / "sandbox-probe.txt").unlink()


def test_no_environment_and_no_programs(sandbox: Sandbox) -> None:
    inside = sandbox.run("import os\nprint(dict(os.environ))")
    assert inside.status == "ok"
    for name, value in SECRETS.items():
        assert name not in inside.stdout and value not in inside.stdout
    js_env = sandbox.run("import js\nprint(js.Deno.env.toObject())")
    assert js_env.status == "error" and "NotCapable" in js_env.stderr, js_env.stderr
    command = sandbox.run("import js\nprint(js.Deno.Command.new('id').outputSync())")
    assert command.status == "error" and "uid=" not in command.stdout
    import_os_system = sandbox.run("import os\nprint(os.system('id'))")
    assert "uid=" not in import_os_system.stdout


def test_limits_stop_a_run_and_the_next_run_is_served(sandbox: Sandbox) -> None:
    loop = sandbox.run("import chmocoder_sandbox\nchmocoder_sandbox.emit('{\"step\": 1}')\nwhile True:\n    pass")
    assert loop.status == "timeout" and loop.exit_code is None
    assert loop.message == "stopped after 3 s (the time limit)"
    assert loop.events == [{"step": 1}], "what a run reported before it was stopped is kept"
    bomb = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))")
    assert bomb.status == "memory" and bomb.message == "stopped at 400 MB of memory (the memory limit)"
    flood = sandbox.run("while True:\n    print('x' * 1000)")
    assert flood.status == "output" and len(flood.stdout) <= 5_000 and flood.stdout.startswith("x" * 1000)
    assert flood.message == "output cut at 5,000 characters (the output limit)"
    assert sandbox.run("print('still here')").stdout == "still here\n"


def test_runs_share_nothing(sandbox: Sandbox) -> None:
    assert sandbox.run("import builtins\nbuiltins.LEFT_BEHIND = 42\nprint('set')").stdout == "set\n"
    after = sandbox.run("import builtins\nprint(getattr(builtins, 'LEFT_BEHIND', 'clean'))")
    assert after.stdout == "clean\n", "every run gets a fresh interpreter"


def test_without_deno_the_sandbox_is_off_says_why_and_runs_nothing(tmp_path: os.PathLike[str]) -> None:
    off = Sandbox(workers=1, time_limit_s=3, memory_mb=400, output_chars=1000, deno_path="/nonexistent/deno").start()
    assert not off.available and not off.wait_ready(1)
    assert off.reason == "the code sandbox is off: Deno is not installed (run scripts/setup.sh)"
    marker = os.path.join(str(tmp_path), "ran")
    result = off.run(f"open({marker!r}, 'w').write('ran')")
    assert result.status == "unavailable" and result.message == off.reason
    assert not os.path.exists(marker), "code is never run outside the sandbox"
