"""A web page of another origin, open in the contributor's browser while the stack runs: it
can read nothing from the stack's emulator and change nothing there."""

from __future__ import annotations

import http.server
import threading

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.helpers import free_port

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
