"""Webhooks: a job's end POSTed to its ``callback_url``, signed per the Standard Webhooks
specification (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` = ``v1,`` +
base64 HMAC-SHA256 of ``id.timestamp.body`` under the deployment's secret).

- At creation, :func:`check_url` refuses what must never be called: anything but https (plain
  http only to a loopback address, and only when ``allow_loopback_http_callbacks`` is set),
  credentials, spaces or control characters in the URL, hosts that do not resolve within
  ``RESOLVE_SECONDS``, and hosts that are or resolve to private, loopback, link-local,
  site-local, multicast, reserved or cloud metadata addresses (an IPv6 address also by the
  IPv4 address it carries); an allowed loopback URL may not name one of the stack's own ports.
- When a job ends, :mod:`divescore.jobs` queues its id on the callbacks queue; the notifier
  (:mod:`services.notifier`: its Lambda handler on AWS, ``python -m services.notifier``
  locally) delivers it: every address is checked again right before the request, which
  then connects to a checked address instead of resolving the name once more (a name's
  answer may change within a second: DNS rebinding), redirects are not followed, each
  attempt is recorded in the job (``callback.attempts``), and a failed attempt comes back
  with backoff until ``callback_max_seconds`` have passed since the job ended. Delivery
  never changes the job's status.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

import certifi
import urllib3
from standardwebhooks.webhooks import Webhook

from divescore import aws, errors
from divescore.jobs import public_view
from divescore.settings import Settings

MAX_URL_CHARS = 2000
SECRET_PREFIX = "whsec_"
# A host that takes longer to resolve is refused: creating a job never waits on a slow resolver
# (an unreachable nameserver made getaddrinfo take 20 s here, its timeouts and retries).
RESOLVE_SECONDS = 3.0
# getaddrinfo has no timeout of its own, so it runs on this pool and is waited for at most
# RESOLVE_SECONDS; a lookup that outlives its wait finishes in the background, and one queued
# behind busy lookups is refused in the same time.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")
# Instance metadata services reachable from inside clouds, whatever their address class.
METADATA_HOSTS = {"169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "metadata"}


class Refused(Exception):
    """The URL may not be called; the message says why."""


# -- the URL ------------------------------------------------------------------------------

def check_url(url: object, settings: Settings, resolve=socket.getaddrinfo) -> str:
    """``url`` if it may be called back, else :class:`divescore.errors.InvalidCallbackUrl`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise errors.InvalidCallbackUrl(
            f"callback_url must be an https URL of at most {MAX_URL_CHARS} characters, e.g. https://example.org/hook."
        )
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise errors.InvalidCallbackUrl("callback_url may not contain spaces or control characters.")
    try:
        addresses(url, settings, resolve)
    except Refused as err:
        raise errors.InvalidCallbackUrl(f"callback_url {url[:100]!r} is refused: {err}") from None
    return url


def addresses(url: str, settings: Settings, resolve=socket.getaddrinfo) -> list[str]:
    """The addresses ``url``'s host resolves to, each one allowed; :class:`Refused` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("it is not a valid URL") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise Refused("only https URLs are called back")
    if parts.username or parts.password:
        raise Refused("a URL may not carry credentials")
    if host in METADATA_HOSTS:
        raise Refused("that is a cloud metadata address")
    lookup = _RESOLVER.submit(resolve, host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout=RESOLVE_SECONDS)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"the host {host!r} does not resolve") from None
    except TimeoutError:
        raise Refused(f"the host {host!r} did not resolve within {RESOLVE_SECONDS:g} s") from None
    ips = sorted({info[4][0].split("%")[0] for info in found})
    loopback_http = settings.allow_loopback_http_callbacks and all(ipaddress.ip_address(ip).is_loopback for ip in ips)
    if parts.scheme == "http" and not loopback_http:
        raise Refused("only https URLs are called back (plain http only to loopback, when the deployment allows it)")
    for ip in ips:
        for address in _meanings(ipaddress.ip_address(ip)):
            if str(address) in METADATA_HOSTS:
                raise Refused("that is a cloud metadata address")
            if address.is_loopback and loopback_http:
                if parts.port in _stack_ports(settings):
                    raise Refused(f"port {parts.port} is one of this stack's own services")
                continue
            if not address.is_global or address.is_multicast or address.is_reserved or _site_local(address):
                raise Refused(f"{host} resolves to {ip}, a private, loopback, link-local or reserved address")
    return ips


# NAT64 prefixes (RFC 6052, RFC 8215): the last 32 bits are an IPv4 address reached through them.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"),
          ipaddress.ip_network("::ffff:0:0:0/96"))  # and SIIT's IPv4-translated addresses


def _meanings(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address, and every IPv4 address an IPv6 one carries (IPv4-mapped and -compatible,
    6to4, Teredo, NAT64), each of which must be allowed on its own: Python calls
    ``64:ff9b::a9fe:a9fe`` global, but it reaches 169.254.169.254."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    carried = []
    if address.ipv4_mapped:
        carried.append(address.ipv4_mapped)
    if address.sixtofour:
        carried.append(address.sixtofour)
    if address.teredo:
        carried.extend(address.teredo)
    if any(address in network for network in _NAT64) or int(address) >> 32 == 0:  # NAT64, IPv4-compatible
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [address, *carried]


def _site_local(address) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address.is_site_local


def _stack_ports(settings: Settings) -> set[int]:
    """The ports of the laptop stack's own services: a loopback callback may not reach them."""
    return {settings.emulator_port, settings.web_port, settings.presign_port, settings.score_port,
            *range(settings.runtime_port, settings.runtime_port + settings.runtimes)}


# -- the secret ---------------------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signer(secret: str) -> Webhook:
    """The Standard Webhooks signer for the deployment's secret: ``whsec_`` + base64 (what
    receivers' libraries take), or any other string, used as its UTF-8 bytes (the form AWS
    Secrets Manager generates; its receivers' secret is ``whsec_`` + base64 of those bytes)."""
    return Webhook(secret if secret.startswith(SECRET_PREFIX) else secret.encode())


def load_secret(settings: Settings) -> str:
    return aws.client("secretsmanager", settings).get_secret_value(SecretId=settings.webhook_secret)["SecretString"]


# -- one delivery --------------------------------------------------------------------------

def deliver(job: dict, webhook: Webhook, settings: Settings, *, message_id: str, clock=time.time,
            resolve=socket.getaddrinfo, ca_certs: str | None = None) -> dict:
    """POST the job's public record to its callback URL once. Returns the attempt's record
    (``at``, ``status`` or ``error``, ``ok``); never raises for the receiver's faults.
    ``ca_certs``: the CA bundle a receiver's certificate must chain to (default: certifi's)."""
    url = job["callback"]["url"]
    at = datetime.fromtimestamp(clock(), UTC)
    attempt = {"at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    body = json.dumps({"type": f"job.{job['status']}", "timestamp": attempt["at"], "data": public_view(job)},
                      separators=(",", ":"), default=str)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "divescore-webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook.sign(message_id, at, body),
    }
    try:
        ips = addresses(url, settings, resolve)  # again: what a name resolves to may have changed since creation
        status = post_to(url, ips, body.encode(), headers, settings.callback_timeout_seconds, ca_certs)
    except Refused as err:
        return {**attempt, "ok": False, "error": str(err), "final": True}
    except urllib3.exceptions.HTTPError as err:
        return {**attempt, "ok": False, "error": _reason(err)}
    return {**attempt, "ok": 200 <= status < 300, "status": status}


def post_to(url: str, ips: list[str], body: bytes, headers: dict, timeout: float, ca_certs: str | None = None) -> int:
    """POST ``body`` to ``url`` through a connection to one of ``ips`` (tried in turn), the
    addresses just checked: never resolving the host name again, so its next answer cannot
    point the request elsewhere. The URL's host still names the request (``Host``) and, over
    https, the TLS server name and the name the certificate must carry. Returns the status;
    redirects are not followed. requests cannot connect to a given address, urllib3 (under it) can."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    failure: urllib3.exceptions.HTTPError | None = None
    for ip in ips:
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(ip, parts.port or 443, server_hostname=parts.hostname,
                                               assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED",
                                               ca_certs=ca_certs or certifi.where())
        else:
            pool = urllib3.HTTPConnectionPool(ip, parts.port or 80)
        try:
            answer = pool.urlopen("POST", path, body=body, headers={**headers, "Host": parts.netloc},
                                  redirect=False, retries=False, assert_same_host=False,
                                  timeout=urllib3.Timeout(total=timeout))
            return answer.status
        except urllib3.exceptions.ConnectTimeoutError as err:  # no connection to that address (refused or
            failure = err  # timed out; urllib3's NewConnectionError is one too): the next may answer
        finally:
            pool.close()
    raise failure or urllib3.exceptions.HTTPError("no address to connect to")


def _reason(err: urllib3.exceptions.HTTPError) -> str:
    """What an attempt's record says went wrong: the error's kind, never the receiver's text."""
    if isinstance(err, urllib3.exceptions.NewConnectionError):  # before TimeoutError: urllib3 makes it one
        return "ConnectionError"
    if isinstance(err, urllib3.exceptions.TimeoutError):
        return "Timeout"
    return err.__class__.__name__
