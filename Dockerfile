# ChMOCoder: multi-stage image. The builder compiles llama-cpp-python; the runtime is slim, runs as
# a non-root user, listens on 7860 and takes all configuration from CHMOCODER_* variables.
#   docker build -t chmocoder .
#   docker build -t chmocoder:offline --build-arg BAKE_MODEL=qwen2.5-coder-1.5b-instruct-q4_k_m .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# A portable x86-64-v3 build (AVX2, FMA, F16C). AMX kernels stay off: they crash on some virtual
# machines. Override for other CPUs, e.g. --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON".
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Build tools come from the base image's Debian release; their exact versions do not matter.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git nodejs npm \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt requirements-sandbox.txt /tmp/
# The code sandbox: Deno (hash-checked wheel) and Pyodide (npm ci checks the lockfile's hashes).
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=4 \
    pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements-sandbox.txt
WORKDIR /sandbox
COPY chmocoder/sandbox/package.json chmocoder/sandbox/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM ${PYTHON_IMAGE}
# llama.cpp's CPU backend needs the OpenMP runtime.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 chmocoder \
    && useradd --create-home --uid 10001 --gid 10001 chmocoder
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY configs/ configs/
COPY chmocoder/ chmocoder/
COPY --from=builder /sandbox/node_modules chmocoder/sandbox/node_modules
COPY app.py ./
RUN mkdir -p models data/journal && chown -R 10001:10001 models data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/app/models/.hf \
    CHMOCODER_HOST=0.0.0.0 \
    CHMOCODER_PORT=7860 \
    CHMOCODER_MODELS_DIR=/app/models \
    CHMOCODER_DATA_DIR=/app/data
USER 10001:10001
# Air-gapped sites: bake a model into the image at build time (fetched and hash-checked here).
ARG BAKE_MODEL=""
RUN if [ -n "$BAKE_MODEL" ]; then CHMOCODER_MODEL="$BAKE_MODEL" python -m chmocoder.fetch_model; fi
VOLUME ["/app/models"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"]
CMD ["python", "app.py"]
