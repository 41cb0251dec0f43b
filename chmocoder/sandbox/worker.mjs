// One sandboxed Python run: load Pyodide (CPython in WebAssembly), say "ready", read one job from
// stdin, run it, report, exit. Deno gives this process no permission but reading Pyodide's own
// files, so the code it runs has no network, no host files, no environment and no other programs.
// Protocol (stdout, one JSON object a line): {"event":"ready"} → {"event":"emit","data":...}* →
// {"event":"done","stdout","stderr","exit","truncated"}. The parent enforces time and memory.
import { loadPyodide } from "npm:pyodide@0.28.3";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function send(message) {
  const bytes = encoder.encode(JSON.stringify(message) + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
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
  return JSON.parse(decoder.decode(all));
}

// Both streams share one budget; past it the write fails, so a flood stops instead of running on.
function capture(limit) {
  const state = { used: 0, truncated: false, stdout: [], stderr: [] };
  const writer = (name) => ({
    write(buffer) {
      const room = limit - state.used;
      if (room <= 0) {
        state.truncated = true;
        throw new Error("output limit reached");
      }
      const kept = buffer.length <= room ? buffer : buffer.subarray(0, room);
      state[name].push(decoder.decode(kept, { stream: true }));
      state.used += kept.length;
      if (kept.length < buffer.length) {
        state.truncated = true;
        throw new Error("output limit reached");
      }
      return buffer.length;
    },
  });
  return { state, stdout: writer("stdout"), stderr: writer("stderr") };
}

// Runs the code as __main__ in a fresh namespace, with CPython's exit semantics.
const RUNNER = `
import sys, traceback

def _chmocoder_run(code):
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(code, "main.py", "exec"), namespace)
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        kind, value, tb = sys.exc_info()
        traceback.print_exception(kind, value, tb.tb_next)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
`;

const pyodide = await loadPyodide({ stdin: () => null });
pyodide.registerJsModule("chmocoder_sandbox", { emit: (data) => send({ event: "emit", data: String(data) }) });
pyodide.runPython(RUNNER);
const run = pyodide.globals.get("_chmocoder_run");
send({ event: "ready" });

const job = await readJob();
const out = capture(job.output_limit);
pyodide.setStdout(out.stdout);
pyodide.setStderr(out.stderr);
let exit = 1;
let failure = "";
try {
  // callPromising lets Python wait on JavaScript promises (asyncio.run, awaits in answers' code).
  exit = await run.callPromising(job.code);
} catch (error) {
  failure = String(error && error.message ? error.message : error).slice(-2000);
}
send({
  event: "done",
  stdout: out.state.stdout.join(""),
  stderr: out.state.stderr.join("") + (failure && !out.state.truncated ? failure : ""),
  exit,
  truncated: out.state.truncated,
});
