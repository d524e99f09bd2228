"""A web page of another origin, open in the contributor's browser while the stack runs: it
can read nothing from the stack's emulator or its function runtime and change nothing there."""

from __future__ import annotations

import http.server
import threading

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.helpers import free_port, wait_until
from tests.support.stack_support import forged_upload_event, new_job, runtime_idle

pytestmark = [pytest.mark.browser, pytest.mark.stack]

HOSTILE_PAGE = b"""<!doctype html><html><body data-ready="true"><p>A page on another origin.</p><script>
window.attempt = async (emulator) => {
  const read = async (path, init) => {
    try { const r = await fetch(emulator + path, init); return {status: r.status, body: await r.text()}; }
    catch (error) { return {blocked: String(error)}; }
  };
  const blind = (path, body) => fetch(emulator + path, {method: "POST", mode: "no-cors", body})
    .then(() => "sent", (error) => String(error));
  return {
    data: await read("/moto-api/data.json"),
    sqs: await read("/?Action=ListQueues"),
    // no-cors requests cannot be read, but they are sent: they must change nothing
    authOff: await blind("/moto-api/reset-auth", "inf"),
    wipe: await blind("/moto-api/reset", ""),
  };
};
// One request after the other: the function runtime takes one invocation at a time.
window.invoke = async (url, event) => {
  const body = JSON.stringify(event);
  let read;
  try { const r = await fetch(url, {method: "POST", body}); read = {status: r.status, body: await r.text()}; }
  catch (error) { read = {blocked: String(error)}; }
  const blind = await fetch(url, {method: "POST", mode: "no-cors", body}).then(() => "sent", (error) => String(error));
  return {read, blind};
};
</script></body></html>"""


@pytest.fixture
def hostile_origin():
    """A page served from another loopback port: another origin than the stack's page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(HOSTILE_PAGE)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_of_another_origin_reads_nothing_from_the_emulator_and_changes_nothing(
        open_page, stack, hostile_origin):
    page = open_page(hostile_origin)
    outcome = page.evaluate("emulator => window.attempt(emulator)", stack.emulator_url)

    # It read nothing: the browser blocks what carries no CORS grant for its origin.
    assert "blocked" in outcome["data"], outcome["data"]
    assert "blocked" in outcome["sqs"], outcome["sqs"]
    # And what it sent blind changed nothing: enforcement is on, the resources are there.
    made_up = boto3.session.Session(region_name=stack.settings.region).client(
        "sqs", endpoint_url=stack.emulator_url, aws_access_key_id="AKIAMADEUP", aws_secret_access_key="made-up")
    with pytest.raises(ClientError) as refused:
        made_up.list_queues()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert stack.store.table.table_status == "ACTIVE"
    assert stack.client("s3").head_bucket(Bucket=stack.settings.bucket)


def test_the_emulators_control_routes_answer_no_one(stack):
    for method, path, body in (("GET", "/moto-api/data.json", None), ("POST", "/moto-api/reset", b""),
                               ("POST", "/moto-api/reset-auth", b"inf"), ("GET", "/moto-api/", None)):
        answer = requests.request(method, stack.emulator_url + path, data=body,
                                  headers={"Origin": "http://evil.example"}, timeout=10)
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:200])
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "SecretAccessKey" not in answer.text


def test_a_page_of_another_origin_cannot_invoke_the_function(open_page, stack, hostile_origin):
    job = new_job(stack).json()
    before = stack.store.get(job["job_id"])
    page = open_page(hostile_origin)
    wait_until(lambda: runtime_idle(stack), 120, what="the dispatcher to have nothing in flight")

    outcome = page.evaluate("([url, event]) => window.invoke(url, event)",
                            [stack.settings.runtime_invoke_urls[0], forged_upload_event(stack, job)])

    # Both requests reached the runtime, and each promise settled once its invocation had ended.
    assert "blocked" in outcome["read"], outcome["read"]
    assert outcome["blind"] == "sent", outcome["blind"]
    assert stack.store.get(job["job_id"]) == before
