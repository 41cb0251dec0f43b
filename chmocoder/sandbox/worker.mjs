// One sandboxed Python run: load Pyodide (CPython in WebAssembly), say "ready", read one job from
// stdin, run it, report, exit. Deno gives this process no permission but reading three of
// Pyodide's own files, so the code it runs has no network, no host files, no environment and no
// other programs. The parent enforces the time and memory limits by killing the process.
//
// Protocol (stdout, one JSON object a line):
//   {"event":"ready"}
//   {"event":"out","stream":"stdout"|"stderr","text":...}   output as the program writes it
//   {"event":"emit","data":...}                               chmocoder_sandbox.emit(json_text)
//   {"event":"done","exit":n|null,"limit":""|"output"|"events"|"memory"}
// Output and events are sent as they happen, so what a run printed or reported before it was
// killed is kept. The program can write to this stdout itself (js.Deno.stdout): it can only
// misreport its own run, and the parent bounds whatever arrives.
import { loadPyodide } from "npm:pyodide@0.28.3";

// Taken before any user code runs, so a program that replaces Deno's globals cannot silence us.
const writeSync = Deno.stdout.writeSync.bind(Deno.stdout);
const exitProcess = Deno.exit.bind(Deno);
const stringify = JSON.stringify;
const encoder = new TextEncoder();

function send(message) {
  const bytes = encoder.encode(stringify(message) + "\n");
  let written = 0;
  while (written < bytes.length) written += writeSync(bytes.subarray(written));
}

function finish(exit, limit) {
  send({ event: "done", exit, limit });
  exitProcess(0);
}

async function readJob() {
  const chunks = [];
  for await (const chunk of Deno.stdin.readable) chunks.push(chunk);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return JSON.parse(new TextDecoder().decode(all));
}

// Cuts `text` to at most `room` UTF-16 units without splitting a surrogate pair.
function cut(text, room) {
  let end = Math.max(room, 0);
  const code = text.charCodeAt(end - 1);
  if (end > 0 && code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

// stdout and stderr share one budget of characters. Past it the run ends at once, with what was
// kept already sent: a program cannot catch this and flood on.
function outputStreams(limit) {
  let used = 0;
  const stream = (name) => {
    const decoder = new TextDecoder();
    return {
      write(buffer) {
        const text = decoder.decode(buffer, { stream: true });
        const kept = text.length <= limit - used ? text : cut(text, limit - used);
        used += kept.length;
        if (kept) send({ event: "out", stream: name, text: kept });
        if (kept.length < text.length) finish(null, "output");
        return buffer.length;
      },
    };
  };
  return { stdout: stream("stdout"), stderr: stream("stderr") };
}

// What the program reports with chmocoder_sandbox.emit has a budget of its own.
function emitter(limit) {
  let used = 0;
  return (data) => {
    const text = String(data);
    used += text.length;
    if (used > limit) finish(null, "events");
    send({ event: "emit", data: text });
  };
}

// Runs the code as __main__ in a fresh module, with CPython's exit semantics. The module is put in
// sys.modules, so doctest.testmod(), pickle and inspect find the program's own definitions, and its
// source is given to linecache, so tracebacks show its lines. Returns [exit code, memory error?].
const RUNNER = `
import linecache, sys, traceback, types

def _chmocoder_run(code):
    main = types.ModuleType("__main__")
    main.__file__ = "main.py"
    sys.modules["__main__"] = main
    linecache.cache["main.py"] = (len(code), None, code.splitlines(True), "main.py")
    try:
        exec(compile(code, "main.py", "exec"), main.__dict__)
        return [0, False]
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            status = int(stop.code or 0)
            return [status if -2**31 <= status < 2**31 else 1, False]
        print(stop.code, file=sys.stderr)
        return [1, False]
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        return [1, isinstance(error, MemoryError)]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
`;

const pyodide = await loadPyodide({ stdin: () => null }); // input() and sys.stdin see end of file
pyodide.runPython(RUNNER);
const run = pyodide.globals.get("_chmocoder_run");
send({ event: "ready" });

const job = await readJob();
const streams = outputStreams(job.output_limit);
pyodide.setStdout(streams.stdout);
pyodide.setStderr(streams.stderr);
pyodide.registerJsModule("chmocoder_sandbox", { emit: emitter(job.events_limit) });
try {
  // callPromising lets Python wait on JavaScript promises (asyncio.run, awaits in answers' code).
  const outcome = (await run.callPromising(job.code)).toJs();
  finish(outcome[0], outcome[1] ? "memory" : "");
} catch (error) {
  // os._exit(n) ends the interpreter with an "Exit" error carrying n; else only a failure of the
  // interpreter itself lands here (Python's own exceptions are caught above).
  if (error && error.name === "Exit" && Number.isInteger(error.status)) finish(error.status, "");
  const text = String(error && error.message ? error.message : error).slice(-2000);
  send({ event: "out", stream: "stderr", text });
  finish(1, "");
}
