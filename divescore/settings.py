"""Every setting of divescore, defined once.

Each setting has one environment variable (``DIVESCORE_*``), a type and a default. Entry
points call :func:`load` once; everything else receives the resulting :class:`Settings`.
Where boto3 sends its requests is *not* a setting here: boto3 reads the standard
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables itself.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import Any

PREFIX = "DIVESCORE_"
MB = 1000 * 1000
MIB = 1024 * 1024
MODEL_DTYPES = ("float32", "bfloat16")  # the backbone's; bfloat16 only when asked for: its score differs


class SettingsError(ValueError):
    """A setting is unknown or has a value of the wrong kind. The message names it."""


def _setting(default: Any, help: str, *, min: int | None = None, max: int | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "min": min, "max": max})


@dataclasses.dataclass(frozen=True)
class Settings:
    # -- resource names ---------------------------------------------------------------
    bucket: str = _setting("divescore-uploads", "S3 bucket for uploads and results")
    queue: str = _setting("divescore-jobs", "SQS queue fed by the bucket's ObjectCreated events")
    dead_letter_queue: str = _setting("divescore-jobs-dlq", "SQS queue keeping messages that failed too often")
    table: str = _setting("divescore-jobs", "DynamoDB table of job records (key job_id)")
    callbacks_queue: str = _setting("divescore-callbacks", "SQS queue of ended jobs whose webhook is to be sent")
    webhook_secret: str = _setting(
        "divescore-webhook-secret", "Secrets Manager secret holding the key webhooks are signed with"
    )
    region: str = _setting("us-east-1", "AWS region used for every client")
    upload_prefix: str = _setting("uploads/", "key prefix of uploaded videos; the only prefix that triggers jobs")
    result_prefix: str = _setting("results/", "key prefix of result artefacts (filmstrips)")

    # -- upload limits ------------------------------------------------------------------
    max_upload_bytes: int = _setting(200 * MB, "largest accepted upload, in bytes", min=1)
    multipart_threshold_bytes: int = _setting(
        64 * MIB, "uploads larger than this use multipart instead of a pre-signed POST", min=1
    )
    part_size_bytes: int = _setting(16 * MIB, "multipart part size, in bytes (S3 needs at least 5 MiB)", min=1)
    url_ttl_seconds: int = _setting(900, "lifetime of pre-signed upload and result URLs", min=1, max=604800)
    content_types: tuple[str, ...] = _setting(
        ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/mpeg"),
        "accepted video content types, comma separated",
    )
    max_filename_chars: int = _setting(255, "longest accepted file name", min=1)
    max_request_bytes: int = _setting(16 * 1024, "largest accepted JSON request body", min=256)

    # -- web and API ----------------------------------------------------------------------
    cors_origins: tuple[str, ...] = _setting(
        ("http://127.0.0.1:8000", "http://localhost:8000"),
        "origins allowed to call the API and S3 from a browser, comma separated (never *)",
    )
    public_s3_url: str = _setting(
        "", "S3 address the browser uses, when it differs from the services' (compose); empty: the same"
    )
    s3_addressing_style: str = _setting("auto", "S3 addressing style: auto, path or virtual")
    presign_api_url: str = _setting(
        "http://127.0.0.1:8001", "address of the jobs API the web page calls; the URLs its answers carry name it")
    score_api_url: str = _setting("http://127.0.0.1:8002", "address of the score API the web page calls")
    max_wait_seconds: int = _setting(25, "longest long-poll ?wait= (below API Gateway's 30 s)", min=0, max=29)
    poll_interval_ms: int = _setting(100, "how often a waiting request re-reads the job record", min=10)

    # -- ports of the native stack -------------------------------------------------------
    host: str = _setting("127.0.0.1", "interface the native stack listens on")
    emulator_port: int = _setting(5000, "port of the AWS emulator (S3, SQS, DynamoDB)", min=1, max=65535)
    web_port: int = _setting(8000, "port of the web page", min=1, max=65535)
    presign_port: int = _setting(8001, "port of the jobs API", min=1, max=65535)
    score_port: int = _setting(8002, "port of the status API", min=1, max=65535)
    runtime_port: int = _setting(9000, "first port of the function runtimes (one port each)", min=1, max=65535)

    # -- permissions in the native stack -------------------------------------------------
    iam: str = _setting(
        "enforced", "enforced: each process of the native stack runs with its role's policy from the template "
        "and the emulator refuses what it does not allow; off: one key allowed everything (for debugging)"
    )
    template: str = _setting("", "the SAM template whose role policies the native stack enforces; empty: template.yaml")
    credentials_dir: str = _setting(
        "", "folder where the native stack keeps its processes' access keys (private); empty: a new temporary folder"
    )

    # -- the function and its queue -----------------------------------------------------
    function_name: str = _setting("divescore-inference", "name of the inference function")
    # The timeout leaves wide room over the benchmark's largest upload (190 MB of 1080p; its
    # time in the function is in bench/results/), for slower hosts and a search that looks at
    # every candidate. The memory is above the measured peak (make bench derives the least
    # setting from it) because Lambda gives CPU in proportion to memory. The visibility
    # timeout is 6x the function timeout, as AWS advises for an SQS event source mapping; it
    # only bounds a runtime that died (a failed attempt sets its own, short, retry delay).
    function_timeout_seconds: int = _setting(90, "inference function timeout", min=1, max=900)
    function_memory_mb: int = _setting(3008, "inference function memory", min=128, max=10240)
    visibility_timeout_seconds: int = _setting(
        540, "jobs queue visibility timeout; must exceed the function timeout (AWS advises 6x)", min=1
    )
    max_receive_count: int = _setting(3, "receives before a message moves to the dead-letter queue", min=1)
    retry_delay_seconds: int = _setting(
        2, "delay before a failed attempt is retried; doubles with each receive", min=0, max=900
    )
    sweep_interval_seconds: int = _setting(
        10, "how often the native stack's sweep looks for jobs lost on their last attempt (AWS: each minute)",
        min=1,
    )
    runtimes: int = _setting(1, "function runtimes run in parallel by the local dispatcher", min=1, max=64)
    invoke_url: str = _setting(
        "", "invoke URL(s) of the function runtimes for the dispatcher, comma separated; empty: derived from ports"
    )

    # -- webhooks ------------------------------------------------------------------------
    allow_loopback_http_callbacks: int = _setting(
        0, "1: a callback_url may be plain http to a loopback address (local development only)", min=0, max=1
    )
    callback_retry_seconds: int = _setting(2, "delay before a failed webhook is sent again; doubles each time", min=1)
    callback_max_seconds: int = _setting(3600, "how long a webhook is retried, from its first attempt", min=1)
    callback_timeout_seconds: int = _setting(10, "how long one webhook request may take", min=1, max=60)

    # -- retention ---------------------------------------------------------------------
    job_ttl_days: int = _setting(7, "days a job record is kept (DynamoDB TTL on expires_at)", min=1)
    upload_retention_days: int = _setting(1, "days uploaded videos are kept (S3 lifecycle)", min=1)
    result_retention_days: int = _setting(7, "days result artefacts are kept (S3 lifecycle)", min=1)

    # -- video limits ------------------------------------------------------------------
    max_video_seconds: int = _setting(600, "longest accepted video duration", min=1)
    max_video_pixels: int = _setting(3840 * 2160, "largest accepted frame (width x height)", min=1)
    min_video_frames: int = _setting(16, "fewest frames a video needs (one 16-frame clip)", min=1)

    # -- model -------------------------------------------------------------------------
    model_dir: str = _setting("", "folder of real MTL-AQA checkpoints; empty: generated untrained weights")
    model_dtype: str = _setting(
        "float32", "backbone dtype: float32 (the same score on every CPU) or bfloat16 (faster where the CPU has bf16)"
    )
    cache_dir: str = _setting("", "where generated weights are cached; empty: ~/.cache/divescore")

    log_level: str = _setting("INFO", "log level of every process")
    verbose: int = _setting(
        0, "1: the laptop stack also prints every emulator request, the runtime emulator's lines, the servers' "
           "start-up lines and the AWS libraries' notes", min=0, max=1)

    def __post_init__(self) -> None:
        if self.visibility_timeout_seconds <= self.function_timeout_seconds:
            raise SettingsError(
                f"{env_name('visibility_timeout_seconds')}: {self.visibility_timeout_seconds} must be greater "
                f"than {env_name('function_timeout_seconds')} ({self.function_timeout_seconds}), or a running "
                "job's message would be handed to a second runtime"
            )
        if "*" in self.cors_origins:
            raise SettingsError(f"{env_name('cors_origins')}: '*' is not allowed; list the web page's origins")
        if self.s3_addressing_style not in ("auto", "path", "virtual"):
            raise SettingsError(f"{env_name('s3_addressing_style')}: must be auto, path or virtual")
        if self.iam not in ("enforced", "off"):
            raise SettingsError(f"{env_name('iam')}: must be enforced or off")
        if self.model_dtype not in MODEL_DTYPES:
            raise SettingsError(f"{env_name('model_dtype')}: must be float32 or bfloat16")

    @property
    def runtime_invoke_urls(self) -> list[str]:
        if self.invoke_url:
            return [u.strip() for u in self.invoke_url.split(",") if u.strip()]
        return [
            f"http://{self.host}:{self.runtime_port + i}/2015-03-31/functions/function/invocations"
            for i in range(self.runtimes)
        ]

    def retry_delay(self, receives: int) -> int:
        """Seconds before the message of a failed attempt comes back (its receive ``receives``):
        the retry delay, doubled per receive, at most the visibility timeout."""
        return min(self.retry_delay_seconds * 2 ** max(receives - 1, 0), self.visibility_timeout_seconds)

    def callback_retry_delay(self, attempt: int) -> int:
        """Seconds before webhook attempt ``attempt`` + 1: doubling, at most 15 minutes (SQS's
        longest message delay)."""
        return min(self.callback_retry_seconds * 2 ** max(attempt - 1, 0), 900)

    def upload_key(self, job_id: str) -> str:
        return f"{self.upload_prefix}{job_id}/video"

    def filmstrip_key(self, job_id: str) -> str:
        return f"{self.result_prefix}{job_id}/filmstrip.jpg"

    def job_id_from_key(self, key: str) -> str | None:
        """The job id of an upload key ``uploads/{job_id}/video``, or None for any other key."""
        if not key.startswith(self.upload_prefix):
            return None
        job_id, sep, rest = key[len(self.upload_prefix):].partition("/")
        return job_id if sep and rest == "video" and job_id else None

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            env[env_name(field.name)] = ",".join(value) if isinstance(value, tuple) else str(value)
        return env


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse(field: dataclasses.Field, raw: str) -> Any:
    name = env_name(field.name)
    if field.type in ("int", int):
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
        lo, hi = field.metadata["min"], field.metadata["max"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise SettingsError(f"{name}: must be {bounds}, got {value}")
        return value
    if str(field.type).startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw.strip()


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``DIVESCORE_*`` variables (default: ``os.environ``), then ``overrides``.

    An unknown ``DIVESCORE_*`` variable is an error, so a typo never passes silently.
    """
    environ = os.environ if environ is None else environ
    fields = {env_name(f.name): f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(PREFIX):
            continue
        if key not in fields:
            raise SettingsError(f"{key}: unknown setting (see docs/settings.md for the list)")
        values[fields[key].name] = _parse(fields[key], raw)
    if "AWS_REGION" in environ and "region" not in values:
        values["region"] = environ["AWS_REGION"]
    values.update(overrides)
    return Settings(**values)


def load_or_exit(program: str = "divescore", **overrides: Any) -> Settings:
    """:func:`load` for a program's entry point: a bad setting is one line on stderr, naming
    it, and exit status 2, instead of a traceback."""
    try:
        return load(**overrides)
    except SettingsError as err:
        print(f"{program}: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, for docs and ``divescore settings``."""
    rows = []
    for field in dataclasses.fields(Settings):
        default = field.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append((env_name(field.name), shown, field.metadata["help"]))
    return rows
