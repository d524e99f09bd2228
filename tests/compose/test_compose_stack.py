"""The whole stack in containers: `make up` (images built, the engine's cache reused), driven
from outside through its published ports as a user would, then `make down` leaves nothing of
the project behind. Also what the BUILT function image holds.

Docker Engine is installed (Debian's docker.io, with debootstrap for the base stand-ins) and
started when missing. Where the public base images cannot be pulled, `make up` builds local
stand-ins (docker/standins/build.sh, docs/deploy.md).

For the test only, a compose override (COMPOSE_FILE, the project's compose file unchanged) puts
the notifier on the host's network so it can reach a webhook receiver on 127.0.0.1 (plain http
callbacks go only to loopback, with DIVESCORE_ALLOW_LOOPBACK_HTTP_CALLBACKS=1), and lowers the
multipart threshold so a small video takes the multipart path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from types import SimpleNamespace

import boto3
import pytest
import requests

from devstack import engine
from divescore.settings import load
from tests.support.helpers import OUTPUT, ROOT, WebhookReceiver, wait_until
from tests.support.stack_support import (
    create_job,
    forged_upload_event,
    padded,
    post_upload,
    read_job,
    small_clip,
    upload_parts,
    wait_final,
)

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

PROJECT = "divescore"
LABEL = f"label=com.docker.compose.project={PROJECT}"
STACK = SimpleNamespace(presign_url="http://127.0.0.1:8001", score_url="http://127.0.0.1:8002")
WEB = "http://localhost:8000"
MIB = 1024 * 1024
FUNCTION_IMAGE = engine.FUNCTION_IMAGE
LOG = OUTPUT / "compose"

OVERRIDE = """\
services:
  presign:
    environment:
      DIVESCORE_MULTIPART_THRESHOLD_BYTES: "1048576"
      DIVESCORE_PART_SIZE_BYTES: "5242880"
      DIVESCORE_ALLOW_LOOPBACK_HTTP_CALLBACKS: "1"
  notifier:
    network_mode: host
    environment:
      AWS_ENDPOINT_URL: http://127.0.0.1:4566
      DIVESCORE_ALLOW_LOOPBACK_HTTP_CALLBACKS: "1"
"""


# Run in a container of the stack other than the dispatcher: the event on stdin, to the function's invoke URL.
FORGE = """
import sys, requests
print(requests.post("http://inference:8080/2015-03-31/functions/function/invocations", data=sys.stdin.read(),
                    timeout=120).text)
"""


def run(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)}: exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def docker_engine():
    """Docker Engine running: Debian's docker.io (and debootstrap) installed, dockerd started when needed."""
    LOG.mkdir(parents=True, exist_ok=True)
    if not (shutil.which("dockerd") and shutil.which("debootstrap")):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-q", env=env, timeout=900)
        run("apt-get", "install", "-y", "-q", "docker.io", "debootstrap", env=env, timeout=1800)
    daemon = engine.start_engine(LOG / "dockerd.log")
    yield
    engine.stop_engine(daemon)


def make(target: str, env: dict) -> tuple[float, str]:
    started = time.monotonic()
    result = run("make", "-C", str(ROOT), target, env=env, timeout=3000, check=False)
    took = time.monotonic() - started
    (LOG / f"make-{target}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"make {target}: exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return took, result.stdout + result.stderr


def project_leftovers() -> dict[str, list[str]]:
    listings = {
        "containers": ("docker", "ps", "-a", "--format", "{{.Names}}"),
        "networks": ("docker", "network", "ls", "--format", "{{.Name}}"),
        "volumes": ("docker", "volume", "ls", "--format", "{{.Name}}"),
    }
    return {kind: run(*command, "--filter", LABEL).stdout.split() for kind, command in listings.items()}


@pytest.fixture(scope="module")
def compose_env(docker_engine, tmp_path_factory):
    override = tmp_path_factory.mktemp("compose") / "test-override.yml"
    override.write_text(OVERRIDE)
    return engine.compose_env(COMPOSE_FILE=f"{ROOT / 'docker-compose.yml'}:{override}")


@pytest.fixture(scope="module")
def compose_stack(compose_env):
    cached = run("docker", "image", "inspect", FUNCTION_IMAGE, check=False).returncode == 0
    took, output = make("up", compose_env)
    used = [line for line in output.splitlines() if line.startswith("make up: images:")]
    print(f"\ncompose: make up took {took:.1f} s ({'images cached' if cached else 'cold: images built'}); {used}")
    (LOG / "timings.txt").open("a").write(f"make up {'cached' if cached else 'cold'}: {took:.1f} s\n")
    assert used, "make up must say which images it used"
    try:
        yield SimpleNamespace(env=compose_env, up_seconds=took)
    finally:
        logs = run("bash", "scripts/compose.sh", "logs", "--no-color", "--tail", "200", cwd=ROOT, env=compose_env,
                   check=False)
        (LOG / "stack.log").write_text(logs.stdout + logs.stderr)
        down, _ = make("down", compose_env)
        print(f"compose: make down took {down:.1f} s")
        assert project_leftovers() == {"containers": [], "networks": [], "volumes": []}


def test_the_stack_in_containers_scores_uploads_cancels_calls_back_and_serves_the_page(compose_stack, browser,
                                                                                        tmp_path):
    started = time.monotonic()
    # A pre-signed POST upload, scored by the function container.
    clip = small_clip(tmp_path / "post.mp4")
    job = create_job(STACK, clip)
    assert job["upload"]["method"] == "POST"
    post_upload(job, clip)

    # A multipart upload (over the test's 1 MiB threshold: two 5 MiB parts).
    big = padded(small_clip(tmp_path / "multi.mp4", offset=7), 6 * MIB)
    multi = create_job(STACK, big)
    upload = multi["upload"]
    assert upload["method"] == "MULTIPART" and len(upload["parts"]) == 2, upload
    parts = upload_parts(multi, big.read_bytes())
    done = requests.post(upload["complete_url"], json={"parts": parts}, timeout=60)
    assert done.status_code in (200, 201, 202), done.text

    # A cancel, before any upload; and a webhook to a receiver on this host, from the notifier container.
    with WebhookReceiver() as receiver:
        canceled_path = small_clip(tmp_path / "cancel.mp4", offset=3)
        created = requests.post(f"{STACK.presign_url}/v1/jobs", json={
            "filename": canceled_path.name, "content_type": "video/mp4", "size": canceled_path.stat().st_size,
            "callback_url": receiver.url}, timeout=30)
        assert created.status_code == 201, created.text
        canceled = created.json()
        cancel = requests.post(f"{STACK.presign_url}/v1/jobs/{canceled['job_id']}/cancel", timeout=30)
        assert cancel.status_code == 200, cancel.text

        for one in (job, multi):
            final = wait_final(STACK, one["job_id"], timeout=600)
            assert final["status"] == "succeeded", final
            assert isinstance(final["score"], float)
        assert wait_final(STACK, canceled["job_id"], timeout=60)["status"] == "canceled"
        delivered = wait_until(
            lambda: (body := read_job(STACK, canceled["job_id"]).json())["callback"]["state"] == "delivered" and body,
            120, interval=0.5, what="the webhook to be delivered")
        assert delivered["callback"]["url"] == receiver.url
        assert receiver.requests, "no webhook reached the host"
        path, _, body = receiver.requests[-1]
        assert path == "/hook"
        event = json.loads(body)
        assert event["type"] == "job.canceled" and event["data"]["job_id"] == canceled["job_id"]
    print(f"compose: API part {time.monotonic() - started:.1f} s")

    # The page, from the web container, in Debian's Chromium; a video scored through it.
    page_clip = small_clip(tmp_path / "page.mp4", offset=11)
    context = browser.new_context()
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(WEB, wait_until="load")
        config = requests.get(f"{WEB}/config.json", timeout=10).json()
        assert json.dumps(config)  # the web container tells the page the API addresses
        page.set_input_files("#file-input", str(page_clip))
        page.wait_for_selector("#result:not([hidden]), #failure:not([hidden])", timeout=600_000)
        assert page.is_visible("#result"), page.inner_text("#failure-message")
        float(page.inner_text("#score"))
        assert not errors, errors
    finally:
        context.close()


def test_only_the_dispatcher_may_invoke_the_function_container(compose_stack, tmp_path):
    """The function container publishes no port, and another container of the stack that
    forges an upload's event for a job awaiting its upload is refused and changes nothing."""
    published = run("docker", "ps", "--filter", LABEL, "--filter", "label=com.docker.compose.service=inference",
                    "--format", "{{.Ports}}").stdout
    assert "->" not in published, published
    stack = SimpleNamespace(settings=load({}))  # the compose stack's bucket and keys are the defaults
    job = create_job(STACK, small_clip(tmp_path / "forged.mp4"))
    before = read_job(STACK, job["job_id"]).json()
    sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:4566", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue = sqs.get_queue_url(QueueName=stack.settings.queue)["QueueUrl"]
    wait_until(lambda: not any(int(count) for count in sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"].values()), 120, what="the dispatcher to have nothing in flight")

    answer = run("bash", "scripts/compose.sh", "exec", "-T", "score", "python", "-c", FORGE, cwd=ROOT,
                 env=compose_stack.env, input=json.dumps(forged_upload_event(stack, job))).stdout

    assert json.loads(answer.strip().splitlines()[-1]).get("errorType") == "InvocationRefused", answer
    assert read_job(STACK, job["job_id"]).json() == before


def test_the_function_image_holds_only_what_it_runs(compose_stack):
    listing = run("docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", FUNCTION_IMAGE, "-c", """
import importlib.metadata as m, json, os, sysconfig
root = os.environ["LAMBDA_TASK_ROOT"]
print(json.dumps({
    "task_root": sorted(os.listdir(root)),
    "site": sorted(os.listdir(sysconfig.get_paths()["purelib"])),
    "dists": sorted(d.metadata["Name"].lower() for d in m.distributions()),
}))""").stdout
    image = json.loads(listing.strip().splitlines()[-1])
    assert {"inference", "divescore"} <= set(image["task_root"]), image["task_root"]
    everything = set(image["task_root"]) | set(image["site"])
    for unwanted in ("devstack", "client", "bench", "tests", "standins", "services", "flask", "moto"):
        assert unwanted not in everything, f"{unwanted} is in the function image"
    for unwanted in ("flask", "moto", "pytest", "playwright"):
        assert unwanted not in image["dists"], f"{unwanted} is installed in the function image"
    assert "torch" in image["dists"] and "awslambdaric" in image["dists"]
    size = int(run("docker", "image", "inspect", "--format", "{{.Size}}", FUNCTION_IMAGE).stdout)
    print(f"\ncompose: {FUNCTION_IMAGE} is {size / 1e9:.2f} GB")
