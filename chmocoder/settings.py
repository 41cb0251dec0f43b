"""All configuration, in one place: defaults in configs/settings.toml, overrides from CHMOCODER_* env vars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Hosting platforms (Hugging Face Spaces, PaaS) say where to listen with variables of their own;
# they apply when the CHMOCODER_ variable of the same setting is not set.
PLATFORM_VARIABLES = {
    "host": ("GRADIO_SERVER_NAME",),
    "port": ("PORT", "GRADIO_SERVER_PORT"),
    "root_path": ("GRADIO_ROOT_PATH",),
}
DEFAULTS_FILE = PROJECT_ROOT / "configs" / "settings.toml"


class Settings(BaseSettings):
    """Every knob of the app. Tests build their own instance instead of patching globals."""

    model_config = SettingsConfigDict(env_prefix="CHMOCODER_", toml_file=DEFAULTS_FILE, extra="ignore")

    model: str = Field(description="Catalog name, 'owner/repo:file.gguf' on Hugging Face, or a path to a GGUF file.")
    models_dir: Path = Field(description="Where downloaded and assembled GGUF files are kept.")
    catalog_file: Path = Field(description="The catalog of known models with pinned hashes.")

    n_ctx: int = Field(ge=256, description="Context window in tokens.")
    n_batch: int = Field(ge=8, description="Prompt tokens evaluated per batch.")
    n_threads: int = Field(ge=0, description="CPU threads for the model; 0 = every CPU this process may use.")
    parallel: int = Field(ge=1, le=64, description="Chats the local model answers at once (sequences per decode).")
    parallel_per_client: int = Field(ge=1, description="Of those, how many one owner, API client or address may hold.")
    engine_url: str = Field(description="An OpenAI-compatible inference server to use instead of a local model.")
    engine_api_key: SecretStr = Field(description="The inference server's API key, if it wants one.")
    engine_model: str = Field(description="The model name to ask the inference server for; empty = its first.")

    kv_cache_mb: int = Field(ge=0, description="Memory for saved per-chat KV states (MB); 0 turns the cache off.")
    kv_cache_dir: Path | None = Field(description="Directory where KV states evicted from memory go; empty = none.")
    kv_cache_disk_mb: int = Field(ge=0, description="Disk budget for spilled KV states (MB).")

    stream_interval_ms: int = Field(ge=0, description="At most one streamed update per this many ms.")
    max_new_tokens: int = Field(ge=1, description="Default answer length limit in tokens.")
    max_new_tokens_limit: int = Field(ge=1, description="Largest answer length a client may ask for.")
    temperature: float = Field(ge=0.0, le=2.0, description="Default sampling temperature.")
    top_p: float = Field(gt=0.0, le=1.0, description="Default nucleus sampling threshold.")
    max_message_chars: int = Field(ge=1, description="Longest user message accepted, in characters.")
    max_attachments: int = Field(ge=0, le=50, description="Text files one message may carry; 0 turns attaching off.")
    max_attachment_bytes: int = Field(ge=1, description="Largest attached file accepted, in bytes of UTF-8 text.")
    max_request_bytes: int = Field(ge=65536, description="Largest HTTP request body accepted; larger gets 413.")

    redis_url: str = Field(
        description="Redis to keep chats in (a seed node with redis_cluster); empty starts an embedded one in data_dir."
    )
    redis_sentinels: str = Field(description="Sentinels 'host:port,...' that name the primary; empty = no Sentinel.")
    redis_sentinel_service: str = Field(description="The primary's name as the Sentinels monitor it (master name).")
    redis_password: SecretStr = Field(description="Password of the Redis servers found through the Sentinels.")
    redis_sentinel_password: SecretStr = Field(description="Password of the Sentinels themselves; empty = none.")
    redis_cluster: bool = Field(description="redis_url is one node of a Redis Cluster (redis-py's RedisCluster).")
    redis_wait_replicas: int = Field(
        ge=0, description="A finished answer must reach this many replicas (WAIT), or it is kept in the journal too."
    )
    redis_wait_ms: int = Field(
        ge=1, le=1000, description="How long WAIT waits for them (below the 1.5 s read timeout of each Redis call)."
    )
    data_dir: Path = Field(description="Data of the embedded Redis (append-only file).")
    chat_ttl_seconds: int = Field(ge=60, description="Chats expire this long after their last write.")
    chat_ttl_max_seconds: int = Field(
        ge=60, description="The longest after its last write that a chat's creator may choose to keep it."
    )
    journal_dir: Path = Field(description="Where answers that could not be saved wait until Redis is back.")
    journal_max_entries: int = Field(ge=1, description="At most this many unsaved answers are kept there.")

    sandbox_enabled: bool = Field(description="Run code in the sandbox (Pyodide in Deno); off = nothing is run.")
    sandbox_workers: int = Field(ge=1, le=16, description="Sandbox workers kept loaded, so that a run starts at once.")
    sandbox_time_limit_s: float = Field(gt=0, le=120, description="A run is stopped after this many seconds.")
    sandbox_memory_mb: int = Field(ge=256, description="A run is stopped above this much memory (MB, whole worker).")
    sandbox_output_chars: int = Field(ge=100, description="Output of a run beyond this is cut, and the run stopped.")
    max_code_chars: int = Field(ge=1, description="Longest code accepted by the run-it-yourself editor and /run_code.")

    verify_enabled: bool = Field(description="Run each answer's Python code in the sandbox and show a verdict.")
    verify_rounds: int = Field(ge=0, le=5, description="Repairs asked of the model while a check still fails.")
    repair_temperature: float = Field(
        ge=0.0, le=2.0, description="Repairs sample at least this warm (a greedy repair repeats the failing code)."
    )

    queue_max_size: int = Field(ge=1, description="Requests waiting in the queue beyond this are refused.")
    api_key: str = Field(description="When set, every route that reads or writes a chat requires it (or a login).")
    rate_limit: str = Field(description="Requests per client address on the working routes; '' = none.")
    sign_in_limit: str = Field(description="Sign-in attempts per client address on /login.")
    open_paths: str = Field(description="With an API key set, these paths (comma-separated) stay open anyway.")
    session_hours: int = Field(ge=1, description="A browser's login (for the API key) lasts this long.")
    frame_ancestors: str = Field(description="Sites that may frame the app (CSP); empty = none, or HF on a Space.")

    host: str = Field(description="Interface to listen on (GRADIO_SERVER_NAME also works).")
    port: int = Field(ge=1, le=65535, description="Port to listen on (PORT and GRADIO_SERVER_PORT also work).")
    root_path: str = Field(description="URL prefix when served behind a proxy under a sub-path.")
    log_level: str = Field(description="Python logging level.")
    shutdown_grace_s: float = Field(
        ge=0, description="On SIGTERM, answers under way get this long to finish before they are stopped and saved."
    )

    @field_validator("kv_cache_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("models_dir", "data_dir", "catalog_file", "kv_cache_dir", "journal_dir")
    @classmethod
    def _anchor_to_project(cls, value: Path | None) -> Path | None:
        """Relative paths mean 'inside the project', whatever the working directory is."""
        if value is None:
            return None
        value = value.expanduser()
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("rate_limit", "sign_in_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        if value:
            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a rate such as '120/minute' or '10 per hour'") from exc
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port (the Sentinels are 'host:port,host:port')")
        return value

    @model_validator(mode="after")
    def _answer_limits(self) -> Settings:
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError("max_new_tokens must not exceed max_new_tokens_limit")
        return self

    @model_validator(mode="after")
    def _one_redis_topology(self) -> Settings:
        if self.redis_sentinels and self.redis_cluster:
            raise ValueError("choose Sentinel (redis_sentinels) or a Redis Cluster (redis_cluster), not both")
        if self.redis_cluster and not self.redis_url:
            raise ValueError("redis_cluster needs redis_url: one node of the cluster to start from")
        return self

    @property
    def sentinel_list(self) -> tuple[tuple[str, int], ...]:
        """The Sentinels as (host, port) pairs, as redis-py's Sentinel takes them."""
        parts = (part.strip().rpartition(":") for part in self.redis_sentinels.split(",") if part.strip())
        return tuple((host.strip("[]"), int(port)) for host, _, port in parts)

    @property
    def open_path_list(self) -> tuple[str, ...]:
        return tuple(p.strip().rstrip("/") for p in self.open_paths.split(",") if p.strip())

    @property
    def frame_ancestors_policy(self) -> str:
        """A Hugging Face Space shows the app in a frame on huggingface.co; elsewhere nobody may."""
        if self.frame_ancestors:
            return self.frame_ancestors
        return "https://huggingface.co https://*.hf.space" if os.environ.get("SPACE_ID") else "'none'"

    @property
    def threads(self) -> int:
        """llama-cpp-python defaults to cpu_count // 2; use every CPU we are allowed to run on."""
        return self.n_threads or len(os.sched_getaffinity(0))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments beat CHMOCODER_* variables, which beat the platform's, which beat the defaults file."""
        return (init_settings, env_settings, PlatformVariables(settings_cls), TomlConfigSettingsSource(settings_cls))


class PlatformVariables(PydanticBaseSettingsSource):
    """Hosting platforms' own variables (PORT, GRADIO_SERVER_PORT, ...) for the settings they name."""

    @staticmethod
    def value(field_name: str) -> str | None:
        names = PLATFORM_VARIABLES.get(field_name, ())
        return next((os.environ[name] for name in names if os.environ.get(name)), None)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.value(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: self.value(name) for name in PLATFORM_VARIABLES}
        return {name: value for name, value in found.items() if value is not None}
