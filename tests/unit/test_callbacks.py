"""Webhook URLs and signatures (divescore.webhooks), without a stack."""

from __future__ import annotations

import base64
import socket
import threading
from datetime import UTC, datetime

import pytest
import trustme
from standardwebhooks.webhooks import Webhook

from divescore import errors
from divescore.settings import load
from divescore.webhooks import Refused, addresses, check_url, deliver, new_secret, signer
from tests.support.helpers import WebhookReceiver

STRICT = load({})
LOCAL = load({}, allow_loopback_http_callbacks=1)


def resolving_to(*ips: str):
    """A resolver answering ``ips`` for any name, as getaddrinfo would."""
    def resolve(host, port, type=0):
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in ips]
    return resolve


@pytest.mark.parametrize(("url", "ips"), [
    ("https://10.0.0.5/hook", ["10.0.0.5"]),
    ("https://192.168.1.1/hook", ["192.168.1.1"]),
    ("https://172.16.0.1/hook", ["172.16.0.1"]),
    ("https://169.254.169.254/latest/meta-data/", ["169.254.169.254"]),
    ("https://metadata.google.internal/", ["169.254.169.254"]),
    ("https://[fd00:ec2::254]/", ["fd00:ec2::254"]),
    ("https://[::ffff:10.0.0.1]/", ["::ffff:10.0.0.1"]),
    ("https://127.0.0.1/hook", ["127.0.0.1"]),
    ("https://0.0.0.0/hook", ["0.0.0.0"]),
    ("https://hooks.example.org/x", ["203.0.113.9", "10.1.2.3"]),  # one private address is enough
    ("https://rebind.example.org/x", ["fe80::1"]),
    ("http://hooks.example.org/x", ["93.184.216.34"]),  # plain http to the internet
    ("ftp://hooks.example.org/x", ["93.184.216.34"]),
    ("https://user:pw@hooks.example.org/x", ["93.184.216.34"]),
    # IPv6 addresses that carry a forbidden IPv4 one, and special-purpose IPv6 ranges
    ("https://hooks.example.org/x", ["64:ff9b::a9fe:a9fe"]),  # NAT64 of the metadata address
    ("https://hooks.example.org/x", ["64:ff9b:1::a00:1"]),  # local-use NAT64 of 10.0.0.1
    ("https://hooks.example.org/x", ["2002:a9fe:a9fe::1"]),  # 6to4
    ("https://hooks.example.org/x", ["::ffff:0:a9fe:a9fe"]),  # IPv4-translated
    ("https://hooks.example.org/x", ["::7f00:1"]),  # IPv4-compatible loopback
    ("https://hooks.example.org/x", ["2001:0:4136:e378:8000:63bf:3fff:fdd2"]),  # Teredo
    ("https://hooks.example.org/x", ["fec0::1"]),  # site-local
    ("https://hooks.example.org/x", ["240.0.0.1"]),  # reserved
])
def test_callbacks_to_private_metadata_or_plain_addresses_are_refused(url, ips):
    with pytest.raises(Refused):
        addresses(url, STRICT, resolving_to(*ips))


def test_a_host_that_does_not_resolve_in_time_is_refused_without_waiting_for_the_resolver():
    # GIVEN a resolver that has not answered (an unreachable nameserver: 20 s of retries)
    answered = threading.Event()

    def stuck(host, port, type=0):
        answered.wait(60)
        return resolving_to("93.184.216.34")(host, port)

    # THEN the check refuses while the resolver is still stuck (it would hang here if it waited)
    try:
        with pytest.raises(Refused, match="did not resolve within 3 s"):
            addresses("https://slow.example.org/hook", STRICT, stuck)
        assert not answered.is_set()
    finally:
        answered.set()


def test_a_public_https_url_is_accepted_with_the_addresses_it_resolves_to():
    assert addresses("https://hooks.example.org:8443/x", STRICT, resolving_to("93.184.216.34")) == ["93.184.216.34"]


@pytest.mark.parametrize("url", ["https://93.184.216.34/x\r\nX-Injected: 1", "https://93.184.216.34/a b",
                                 "https://93.184.216.34/\x00", "https://93.184.216.34/\x7f"])
def test_a_url_with_spaces_or_control_characters_is_refused(url):
    with pytest.raises(errors.InvalidCallbackUrl, match="control characters"):
        check_url(url, STRICT)


def test_plain_http_to_loopback_only_when_the_setting_allows_it():
    loopback = resolving_to("127.0.0.1")
    assert addresses("http://127.0.0.1:9999/hook", LOCAL, loopback) == ["127.0.0.1"]
    with pytest.raises(Refused, match="only https"):
        addresses("http://127.0.0.1:9999/hook", STRICT, loopback)
    with pytest.raises(Refused):
        addresses("http://10.0.0.1/hook", LOCAL, resolving_to("10.0.0.1"))


def test_a_bad_callback_url_is_a_400_naming_the_problem():
    for url in ("not a url", "", 42, "https://" + "a" * 3000, "https://no-such-host.invalid/"):
        with pytest.raises(errors.InvalidCallbackUrl) as raised:
            check_url(url, STRICT)
        assert raised.value.status == 400 and raised.value.code == "invalid_callback_url"


def test_a_delivery_is_refused_when_the_name_now_resolves_to_a_private_address():
    job = {"job_id": "j", "status": "succeeded", "callback": {"url": "https://10.9.9.9/hook"}}
    attempt = deliver(job, signer(new_secret()), STRICT, message_id="msg_j")
    assert attempt["ok"] is False and attempt["final"] is True and "private" in attempt["error"]


def test_signatures_verify_with_the_standard_library_both_secret_forms():
    at = datetime.now(UTC)
    body = '{"type":"job.succeeded"}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(at.timestamp()))}
    whsec = new_secret()
    assert whsec.startswith("whsec_")
    signed = {**headers, "webhook-signature": signer(whsec).sign("msg_1", at, body)}
    assert Webhook(whsec).verify(body, signed) == {"type": "job.succeeded"}
    generated = "Ab3" * 16  # what Secrets Manager generates: receivers use whsec_ + base64 of its bytes
    signed = {**headers, "webhook-signature": signer(generated).sign("msg_1", at, body)}
    assert Webhook("whsec_" + base64.b64encode(generated.encode()).decode()).verify(body, signed)


# -- delivery connects to the address it checked ------------------------------------------

def rebinding(first: str, then: str):
    """A name server that answers ``first`` once and ``then`` ever after (DNS rebinding)."""
    answers = []

    def resolve(host, port, type=0):
        answers.append(host)
        return resolving_to(first if len(answers) == 1 else then)(host, port)
    resolve.answers = answers
    return resolve


def ended_job(url: str) -> dict:
    return {"job_id": "j", "status": "succeeded", "score": 71.5, "callback": {"url": url}}


def test_a_delivery_goes_to_the_address_it_checked_whatever_the_name_resolves_to_next():
    # GIVEN a name only our resolver knows, which answers the receiver's address once, then a
    # private one (nothing else can resolve it: a request that looked the name up again fails)
    secret = new_secret()
    resolve = rebinding("127.0.0.1", "10.0.0.1")
    with WebhookReceiver() as receiver:
        url = f"http://hook.divescore.test:{receiver.port}/hook?team=a"
        attempt = deliver(ended_job(url), signer(secret), LOCAL, message_id="msg_j", resolve=resolve)
        # THEN the signed job reached the checked address, named by the URL's host, and the
        # name was resolved once (by the check)
        assert attempt["ok"] is True and attempt["status"] == 200, attempt
        ((path, headers, body),) = receiver.requests
    assert path == "/hook?team=a" and headers["Host"] == f"hook.divescore.test:{receiver.port}"
    assert Webhook(secret).verify(body, headers)["data"]["score"] == 71.5
    assert resolve.answers == ["hook.divescore.test"]


def test_over_https_the_pinned_connection_still_verifies_the_certificate_for_the_urls_host(tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for certificate_for, delivered in (("hook.divescore.test", True), ("other.divescore.test", False)):
        with WebhookReceiver(certificate=ca.issue_cert(certificate_for)) as receiver:
            url = f"https://hook.divescore.test:{receiver.port}/hook"
            attempt = deliver(ended_job(url), signer(new_secret()), LOCAL, message_id="msg_j",
                              resolve=resolving_to("127.0.0.1"), ca_certs=str(ca_file))
            assert attempt["ok"] is delivered, (certificate_for, attempt)
            assert len(receiver.requests) == int(delivered)
        if not delivered:  # a certificate for another name: refused by TLS, before any byte of the job
            assert attempt["error"] == "SSLError" and "final" not in attempt


def test_a_receiver_that_is_not_listening_is_a_connection_error_to_retry():
    with WebhookReceiver() as receiver:
        port = receiver.port
    attempt = deliver(ended_job(f"http://hook.divescore.test:{port}/hook"), signer(new_secret()), LOCAL,
                      message_id="msg_j", resolve=resolving_to("127.0.0.1"))
    assert attempt["ok"] is False and attempt["error"] == "ConnectionError" and "final" not in attempt
