"""The code sandbox, for real: what runs in it cannot reach the network, the host's files, the app's
environment or other programs, and a run is stopped at its time, memory and output limits."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chmocoder.sandbox import Sandbox
from chmocoder.settings import PROJECT_ROOT

SECRETS = {"CHMOCODER_API_KEY": "key-that-must-not-leak", "REDIS_PASSWORD": "password-that-must-not-leak"}
SLOW_OK = 30.0  # runs that must end on their own (or at the memory limit) get time even on a busy machine


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    saved = {name: os.environ.get(name) for name in SECRETS}
    os.environ.update(SECRETS)  # set in the app's process, as a deployment would
    box = Sandbox(workers=2, time_limit_s=3.0, memory_mb=400, output_chars=5_000).start()
    assert box.wait_ready(90), box.reason
    yield box
    box.close()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture()
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every connection made to it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"secret page")

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def verify_request(self, request: object, client_address: object) -> bool:
            seen.append(str(client_address))  # every accepted TCP connection, request or not
            return True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_code_runs_and_reports_like_python(sandbox: Sandbox) -> None:
    ok = sandbox.run("import sys\nprint(sum(range(10)))\nprint('warn', file=sys.stderr)")
    assert (ok.status, ok.exit_code, ok.stdout, ok.stderr, ok.message) == ("ok", 0, "45\n", "warn\n", "")
    crash = sandbox.run("def f():\n    return 1 / 0\nf()")
    assert crash.status == "error" and crash.exit_code == 1
    assert crash.stderr.startswith('Traceback (most recent call last):\n  File "main.py", line 3, in <module>\n    f()')
    assert '  File "main.py", line 2, in f\n    return 1 / 0\n' in crash.stderr, "tracebacks show the program's lines"
    assert crash.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert "_chmocoder" not in crash.stderr and "worker" not in crash.stderr, "no sandbox frames in the traceback"
    exits = [sandbox.run(code) for code in ("raise SystemExit(3)", "import sys\nsys.exit()", "import os\nos._exit(4)")]
    assert [(r.status, r.exit_code) for r in exits] == [("error", 3), ("ok", 0), ("error", 4)]
    assert "EOFError" in sandbox.run("input('name? ')").stderr, "input() ends at once instead of hanging"
    awaited = sandbox.run(
        "import asyncio\nasync def main():\n    await asyncio.sleep(0.01)\n    return 7\nprint(asyncio.run(main()))"
    )
    assert awaited.stdout == "7\n", "answers that use asyncio run as they would in CPython"


def test_the_program_is_main_as_in_cpython(sandbox: Sandbox) -> None:
    """Answers often end with doctest.testmod() or pickle their own classes: both need the program
    to be the real __main__ module."""
    code = (
        "import doctest, pickle\n"
        "def square(x):\n    '''\n    >>> square(3)\n    10\n    '''\n    return x * x\n"
        "class Point:\n    pass\n"
        "print(__name__, type(pickle.loads(pickle.dumps(Point()))).__name__)\n"
        "print(doctest.testmod())\n"
    )
    result = sandbox.run(code, time_limit_s=SLOW_OK)
    assert result.stdout.startswith("__main__ Point\n"), result
    assert "Failed example:\n    square(3)\nExpected:\n    10\nGot:\n    9" in result.stdout
    assert result.stdout.endswith("TestResults(failed=1, attempted=1)\n")


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
        assert result.status == "error" and result.exit_code == 1, f"{how}: {result}"
        if how in ("pyfetch", "js.fetch"):  # JavaScript's fetch is refused by Deno's permissions
            assert "Requires net access" in result.stderr, f"{how}: {result.stderr}"
    assert seen == [], "the server never saw a connection"


def test_no_host_files(sandbox: Sandbox) -> None:
    data = PROJECT_ROOT / "data"
    data.mkdir(exist_ok=True)
    probe = data / "sandbox-probe.txt"
    probe.write_text("private chat data")
    targets = ["/etc/passwd", str(probe), str(PROJECT_ROOT / "chmocoder" / "settings.py")]
    code = (
        f"import js, os\nfor path in {targets!r}:\n"
        "    try:\n        print('READ', open(path).read())\n"
        "    except Exception as error:\n        print('open', type(error).__name__)\n"
        "    try:\n        print('READ', js.Deno.readTextFileSync(path))\n"
        "    except Exception as error:\n        print('Deno', str(error).split(' to ')[0])\n"
        "print(os.listdir('/'), os.path.exists('/etc/passwd'))\n"
    )
    try:
        result = sandbox.run(code, time_limit_s=SLOW_OK)
    finally:
        probe.unlink()
    assert result.status == "ok", result
    assert "READ" not in result.stdout and "private chat data" not in result.stdout and "root:" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[:-1] == ["open FileNotFoundError", "Deno NotCapable: Requires read access"] * 3, result.stdout
    assert "work" not in lines[-1] and lines[-1].endswith("False"), "the host's file tree is not there at all"


def test_no_environment_and_no_programs(sandbox: Sandbox) -> None:
    inside = sandbox.run("import os\nprint(dict(os.environ))")
    assert inside.status == "ok"
    for name, value in SECRETS.items():
        assert name not in inside.stdout and value not in inside.stdout
    js_env = sandbox.run("import js\nprint(js.Deno.env.toObject())")
    assert js_env.status == "error" and "NotCapable: Requires env access" in js_env.stderr, js_env.stderr
    assert not any(value in js_env.stdout + js_env.stderr for value in SECRETS.values())
    command = sandbox.run("import js\nprint(js.Deno.Command.new('id').outputSync())")
    assert command.status == "error" and "uid=" not in command.stdout
    assert "NotCapable: Requires run access" in command.stderr, command.stderr
    assert "uid=" not in sandbox.run("import os\nprint(os.system('id'))").stdout


def test_time_limit_keeps_what_the_run_printed_and_reported(sandbox: Sandbox) -> None:
    code = "import chmocoder_sandbox\nprint('started')\nchmocoder_sandbox.emit('{\"step\": 1}')\nwhile True:\n    pass"
    loop = sandbox.run(code)
    assert (loop.status, loop.exit_code, loop.message) == ("timeout", None, "stopped after 3 s (the time limit)")
    assert loop.stdout == "started\n", "what the program printed before it was stopped is shown"
    assert loop.events == [{"step": 1}], "what a run reported before it was stopped is kept"
    assert sandbox.run("print('still here')").stdout == "still here\n"


def test_memory_limit(sandbox: Sandbox) -> None:
    message = "stopped at 400 MB of memory (the memory limit)"
    at_once = sandbox.run("x = bytearray(10**9)\nprint('allocated')", time_limit_s=SLOW_OK)
    assert (at_once.status, at_once.exit_code, at_once.message, at_once.stdout) == ("memory", None, message, "")
    growing = sandbox.run("x = []\nwhile True:\n    x.append([0] * 10**6)", time_limit_s=SLOW_OK)
    assert (growing.status, growing.exit_code, growing.message) == ("memory", None, message), growing
    assert sandbox.run("print('still here')").stdout == "still here\n"


def test_output_limit(sandbox: Sandbox) -> None:
    message = "output cut at 5,000 characters (the output limit)"
    flood = sandbox.run("while True:\n    print('x' * 1000)")
    assert (flood.status, flood.exit_code, flood.message) == ("output", None, message)
    assert len(flood.stdout) <= 5_000 and flood.stdout.startswith("x" * 1000)
    stubborn = sandbox.run("while True:\n    try:\n        print('y' * 1000)\n    except BaseException:\n        pass")
    assert stubborn.status == "output" and len(stubborn.stdout) <= 5_000, "catching the error does not help"
    raw = sandbox.run("import js\nchunk = js.Uint8Array.new(10**6)\nwhile True:\n    js.Deno.stdout.writeSync(chunk)")
    assert raw.status == "output", "writing around Python's stdout is bounded too"
    forged = sandbox.run("import js\njs.Deno.stdout.writeSync(js.Uint8Array.new(b'not json\\n'))\nprint('done')")
    assert (forged.status, forged.stdout) == ("ok", "not json\ndone\n"), forged
    assert sandbox.run("print('still here')").stdout == "still here\n"


def test_reports_reach_the_app_as_they_come(sandbox: Sandbox) -> None:
    heard: list[dict[str, object]] = []
    code = (
        "import chmocoder_sandbox as sb\n"
        'sb.emit(\'{"check": 1, "passed": true}\')\nsb.emit(\'[1, 2]\')\nsb.emit(\'{"text": "\\\\ud800"}\')\n'
    )
    result = sandbox.run(code, on_event=heard.append)
    assert result.events == heard == [{"check": 1, "passed": True}, {"data": [1, 2]}, {"text": "?"}]
    assert heard[-1]["text"].encode("utf-8"), "a lone surrogate never reaches the app"  # type: ignore[union-attr]


def test_runs_share_nothing(sandbox: Sandbox) -> None:
    first = sandbox.run("import builtins\nLEFT_BEHIND = 42\nbuiltins.ALSO_LEFT = 1\nprint('set')")
    assert first.stdout == "set\n"
    after = sandbox.run("import builtins\nprint(globals().get('LEFT_BEHIND', 'clean'), hasattr(builtins, 'ALSO_LEFT'))")
    assert after.stdout == "clean False\n", "every run gets a fresh interpreter"


def test_without_deno_the_sandbox_is_off_says_why_and_runs_nothing(tmp_path: Path) -> None:
    off = Sandbox(workers=1, time_limit_s=3, memory_mb=400, output_chars=1000, deno_path="/nonexistent/deno").start()
    assert not off.available and not off.wait_ready(1)
    assert off.reason == "the code sandbox is off: Deno is not installed (run scripts/setup.sh)"
    marker = tmp_path / "ran"
    result = off.run(f"open({str(marker)!r}, 'w').write('ran')")
    assert (result.status, result.exit_code, result.message) == ("unavailable", None, off.reason)
    assert not marker.exists(), "code is never run outside the sandbox"
    never_started = Sandbox(workers=1, time_limit_s=3, memory_mb=400, output_chars=1000)
    assert not never_started.available and never_started.run("print(1)").status == "unavailable"


def test_a_deno_that_cannot_load_pyodide_turns_the_sandbox_off_with_its_reason(tmp_path: Path) -> None:
    broken = tmp_path / "deno"
    broken.write_text("#!/bin/sh\necho 'error: something is broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    off = Sandbox(workers=1, time_limit_s=3, memory_mb=400, output_chars=1000, deno_path=str(broken)).start()
    assert not off.wait_ready(30) and not off.available
    assert off.reason == "the code sandbox is off: Deno could not load Pyodide (error: something is broken)"
    assert off.run("print(1)").status == "unavailable"
    off.close()
