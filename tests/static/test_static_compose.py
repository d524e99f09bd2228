"""docker-compose.yml, checked without Docker: Compose v2 itself validates it, and the
resolved file must agree with divescore.settings and with the code it starts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from divescore import settings as settings_module
from standins import dispatcher_key
from tests.support.static_support import (
    COMPOSE_FILE,
    COMPOSE_KEY,
    ROOT,
    compose,
    compose_config,
    defines,
    module_file,
)

# The only settings one service may set alone (the HTTP services listen on every interface).
PER_SERVICE_SETTINGS = {"invoke_url", "model_dir", "host"}


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config()


@pytest.fixture(scope="module")
def services(config) -> dict:
    return config["services"]


def service_settings(service: dict) -> settings_module.Settings:
    return settings_module.load(service.get("environment") or {})


def published(service: dict, target: int) -> int:
    [port] = [int(p["published"]) for p in service.get("ports", []) if int(p["target"]) == target]
    return port


def test_compose_validates_the_file():
    result = compose(COMPOSE_FILE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_check_fails_on_an_unknown_key(tmp_path):
    # GIVEN the compose file with one misspelt key
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert '    restart: "no"\n' in text
    broken.write_text(text.replace('    restart: "no"\n', '    restartt: "no"\n', 1))
    # WHEN Compose checks it THEN it fails and names the key
    result = compose(broken, "config", "--quiet")
    assert result.returncode != 0
    assert "restartt" in result.stderr


def test_compose_check_fails_on_a_missing_dependency(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace(
            "      inference:\n        condition: service_healthy",
            "      inferenc:\n        condition: service_healthy",
            1,
        )
    )
    result = compose(broken, "config", "--quiet")
    assert result.returncode != 0
    assert "inferenc" in result.stderr


def test_images_are_pinned(services):
    for name, service in services.items():
        image = service["image"]
        assert re.search(r":[\w.-]+$", image.split("/")[-1]), f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
    assert services["localstack"]["image"] == "localstack/localstack:4.14.0"


def test_built_images_use_the_dockerfiles_in_the_tree(services):
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == {"bootstrap", "inference", "dispatcher", "sweep", "notifier", "presign", "score", "web"}
    for name, build in built.items():
        assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
    assert built["inference"]["dockerfile"] == "lambda_image/Dockerfile"


def test_localstack_runs_only_the_services_we_use_and_has_a_health_check(services):
    localstack = services["localstack"]
    # secretsmanager: the webhook signing key
    assert set(localstack["environment"]["SERVICES"].split(",")) == {"s3", "sqs", "dynamodb", "secretsmanager"}
    assert "/_localstack/health" in " ".join(localstack["healthcheck"]["test"])


def test_start_order_waits_for_health_and_for_the_bootstrap(services):
    assert services["bootstrap"]["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert services["bootstrap"]["command"] == ["python", "-m", "standins.bootstrap"]
    for name in ("inference", "dispatcher", "sweep", "notifier", "presign", "score"):
        assert services[name]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully", (
            name
        )
    assert services["dispatcher"]["depends_on"]["inference"]["condition"] == "service_healthy"
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency}, which has no check"
                )


def test_no_named_volumes_and_no_real_credentials(config, services):
    # Nothing here must survive a restart: LocalStack's free image keeps no state anyway.
    assert not config.get("volumes")
    for name, service in services.items():
        environment = service.get("environment") or {}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert environment.get(key, "test") == "test", f"{name}: {key} must be LocalStack's fake value"
        assert not any(k in environment for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE")), name


def test_every_service_loads_its_settings_and_all_share_them(services):
    # GIVEN each Python service's environment WHEN settings load it (an unknown DIVESCORE_*
    # variable or a bad value fails here as it would at start-up) THEN all agree.
    python_services = [n for n in services if n != "localstack"]
    loaded = {name: service_settings(services[name]) for name in python_services}
    reference = loaded["bootstrap"]
    for name, settings in loaded.items():
        differing = {
            f
            for f in settings_module.Settings.__dataclass_fields__
            if getattr(settings, f) != getattr(reference, f)
        } - PER_SERVICE_SETTINGS
        assert not differing, f"{name} differs from bootstrap in {sorted(differing)}"
    # The resource names, limits and content types are the settings' defaults.
    defaults = settings_module.Settings()
    for field in (
        "bucket",
        "queue",
        "dead_letter_queue",
        "table",
        "content_types",
        "max_upload_bytes",
        "max_receive_count",
        "upload_prefix",
        "result_prefix",
    ):
        assert getattr(reference, field) == getattr(defaults, field), field
    for name in python_services:
        assert services[name]["environment"]["AWS_ENDPOINT_URL"] == "http://localstack:4566", name


def test_browser_facing_addresses_are_the_host_ports(services):
    settings = service_settings(services["presign"])
    # Pre-signed URLs are signed for the address the browser uses: localhost, LocalStack's port.
    s3 = urlsplit(settings.public_s3_url)
    assert s3.hostname == "localhost"
    assert s3.port == published(services["localstack"], 4566)
    assert settings.s3_addressing_style == "path"
    assert urlsplit(settings.presign_api_url).port == published(services["presign"], 8001)
    assert urlsplit(settings.score_api_url).port == published(services["score"], 8002)
    web_port = published(services["web"], 8000)
    assert web_port == settings_module.Settings().web_port
    assert f"http://localhost:{web_port}" in settings.cors_origins
    assert "*" not in settings.cors_origins


def test_http_services_start_as_divescore_serving_defines_them_where_they_are_published(services):
    """One definition of how a service runs: compose names the service, standins.serving the
    gunicorn command line (as for the native stack and the tests)."""
    from standins.serving import SERVICES, gunicorn_command

    for name, service, port in (("presign", "jobs_api", 8001), ("score", "status_api", 8002),
                                ("web", "webpage", 8000)):
        assert services[name]["command"] == ["python", "-m", "standins.serving", service], name
        command = gunicorn_command(service, service_settings(services[name]))
        assert command[command.index("--bind") + 1] == f"0.0.0.0:{port}", name
        module, _, attribute = SERVICES[service].app.partition(":")
        assert defines(module_file(module), attribute), f"{name}: {SERVICES[service].app} does not exist"
        assert published(services[name], port), name
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in check, name


def test_dispatcher_invokes_the_inference_container(services):
    settings = service_settings(services["dispatcher"])
    assert services["dispatcher"]["command"] == ["python", "-m", "standins.dispatcher"]
    assert module_file("standins.dispatcher").is_file()
    [url] = settings.runtime_invoke_urls
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("inference", 8080)
    assert parts.path == "/2015-03-31/functions/function/invocations"


def test_only_the_dispatcher_reaches_and_may_invoke_the_function(services):
    """The runtime is on the stack's network only, and behind the guard that refuses an
    invocation without the dispatcher's key, which scripts/compose.sh gives the two of them."""
    inference = services["inference"]
    assert not inference.get("ports")
    assert inference["command"] == [dispatcher_key.GUARD]
    assert module_file(dispatcher_key.GUARD.rsplit(".", 1)[0]).is_file()
    [mount] = inference["volumes"]
    assert (mount["type"], mount["source"], mount["target"], mount["read_only"]) == (
        "bind", str(ROOT / "standins"), "/var/task/standins", True)
    holders = {name: service["environment"][dispatcher_key.ENV] for name, service in services.items()
               if dispatcher_key.ENV in (service.get("environment") or {})}
    assert holders == dict.fromkeys(("inference", "dispatcher"), COMPOSE_KEY[dispatcher_key.ENV])
    script = (ROOT / "scripts" / "compose.sh").read_text()
    assert f"export {dispatcher_key.ENV}" in script and "/dev/urandom" in script


def test_the_function_timeout_is_the_same_everywhere(services):
    inference = services["inference"]["environment"]
    settings = service_settings(services["inference"])
    assert int(inference["AWS_LAMBDA_FUNCTION_TIMEOUT"]) == settings.function_timeout_seconds
    assert int(inference["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]) == settings.function_memory_mb
    assert settings.function_timeout_seconds == settings_module.Settings().function_timeout_seconds
    assert settings.visibility_timeout_seconds > settings.function_timeout_seconds
    # The untrained generated weights unless MODEL_DIR is given.
    assert settings.model_dir == ""


def test_python_health_checks_are_valid_python(services):
    checked = 0
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:2] in (["python"], ["python3"]):
            assert test[2] == "-c", name
            compile(test[3], f"{name} health check", "exec")
            checked += 1
    assert checked == 5
