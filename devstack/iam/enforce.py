"""IAM in the native emulator, closer to AWS than moto's own checks.

moto (``INITIAL_NO_AUTH_ACTION_COUNT``) authenticates requests signed in an ``Authorization``
header and authorises their action against the caller's IAM policies. Three things it leaves
out matter here, so they are added to the running moto server:

- **Pre-signed requests.** A pre-signed URL (SigV4 in the query string: part uploads, the
  filmstrip GET) or a pre-signed POST (a signed policy in the form: browser uploads) makes
  moto fail with a 500. They are authenticated here as S3 does (signature, expiry, and each of a
  POST policy's conditions: key, content type, size range, no unnamed field) and
  authorised with the permissions of the key that signed them. A request with no signature
  at all is anonymous, and the bucket is private: 403.
- **A missing object reads as 403 without ``s3:ListBucket``**, as S3 answers a HEAD or GET
  for a key that does not exist when the caller may not list the bucket.
- **DynamoDB, Secrets Manager and sqs:GetQueueUrl resources.** moto authorises them against
  ``*``, so a statement limited to a table's, a secret's or a queue's ARN would never match;
  the table, secret or queue named in the request is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sqs.responses import SQSResponse

    original = S3Response._authenticate_and_authorize_s3_action

    def authorize_s3(self, bucket_name=None, key_name=None):
        if self.method == "OPTIONS":
            return  # a CORS preflight carries no credentials; the bucket's CORS rules answer it
        if not enforcing():
            return original(self, bucket_name=bucket_name, key_name=key_name)
        if "Authorization" in self.headers:
            original(self, bucket_name=bucket_name, key_name=key_name)
        else:
            _authorize_presigned(self, bucket_name, key_name)
        _refuse_missing_key_without_list(self, bucket_name, key_name)

    S3Response._authenticate_and_authorize_s3_action = authorize_s3
    DynamoHandler._determine_resource = _dynamodb_table_arn
    SecretsManagerResponse._determine_resource = _secret_arn
    queue_resource = SQSResponse._determine_resource

    def sqs_resource(self) -> str:
        # GetQueueUrl names its queue by QueueName, which moto's own lookup does not read.
        name = self._get_param("QueueName")
        if name and not self._get_param("QueueUrl"):
            return f"arn:aws:sqs:{self.region}:{self.current_account}:{name}"
        return queue_resource(self)

    SQSResponse._determine_resource = sqs_resource


def enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


# -- pre-signed requests ----------------------------------------------------------------

def _authorize_presigned(response, bucket_name: str | None, key_name: str | None) -> None:
    from moto.s3.exceptions import S3AccessDeniedError

    request = response.request
    query = dict(parse_qsl(request.environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if "X-Amz-Credential" in query:
        key_id = _check_query_signature(request, query)
    elif "x-amz-signature" in _form(response) and request.method == "POST":
        key_id = _check_post_policy(_form(response), bucket_name, _file_size(response))
        key_name = key_name or _form(response).get("key")  # moto authorises a POST on the bucket alone
    else:
        raise S3AccessDeniedError()  # anonymous, and the bucket is private
    _check_permitted(response, key_id, f"s3:{response._get_action()}", _s3_arn(bucket_name, key_name))


def _form(response) -> dict[str, str]:
    return {k.lower(): v[0] for k, v in response.querystring.items() if v}


def _check_query_signature(request, query: dict[str, str]) -> str:
    """SigV4 in the query string (``X-Amz-Credential``, ``X-Amz-Signature``...); returns the key id."""
    from moto.s3.exceptions import S3AccessDeniedError, S3SignatureDoesNotMatchError

    key_id, date, region, service, _ = query["X-Amz-Credential"].split("/")
    amz_date = query.get("X-Amz-Date", "")
    if query.get("X-Amz-Algorithm") != ALGORITHM or not amz_date.startswith(date):
        raise S3SignatureDoesNotMatchError()
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    if time.time() > signed_at + int(query.get("X-Amz-Expires", "0")):
        raise S3AccessDeniedError()  # S3 says "Request has expired"
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    raw_path, _, raw_query = raw_uri.partition("?")
    raw_path = raw_path or quote(request.environ.get("PATH_INFO", "/"))
    pairs = sorted(p.partition("=")[::2] for p in raw_query.split("&") if p and not p.startswith("X-Amz-Signature="))
    signed_headers = query.get("X-Amz-SignedHeaders", "host").split(";")
    canonical = "\n".join([
        request.method.upper(),
        raw_path,
        "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed_headers),
        ";".join(signed_headers),
        query.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    secret = _principal(key_id).create_credentials().secret_key
    expected = hmac.new(_signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
        raise S3SignatureDoesNotMatchError()
    return key_id


def _file_size(response) -> int:
    """The size of the form's file: moto keeps its content as the body (text when it decodes)."""
    body = response.body or b""
    return len(body.encode() if isinstance(body, str) else body)


def _check_post_policy(form: dict[str, str], bucket_name: str | None, size: int) -> str:
    """A browser POST: the base64 policy signed with the key's SigV4 signing key, unexpired,
    each of its conditions met by the form; returns the key id."""
    from moto.s3.exceptions import S3AccessDeniedError, S3SignatureDoesNotMatchError

    if form.get("x-amz-algorithm") != ALGORITHM or "policy" not in form:
        raise S3SignatureDoesNotMatchError()
    key_id, date, region, service, _ = form.get("x-amz-credential", "////").split("/")
    secret = _principal(key_id).create_credentials().secret_key
    signing_key = _signing_key(secret, date, region, service)
    expected = hmac.new(signing_key, form["policy"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, form["x-amz-signature"]):
        raise S3SignatureDoesNotMatchError()
    policy = json.loads(base64.b64decode(form["policy"]))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")).timestamp()
    if time.time() > expiration:
        raise S3AccessDeniedError()  # "Invalid according to Policy: Policy expired."
    _check_conditions(policy.get("conditions", []), {**form, "bucket": bucket_name or ""}, size)
    return key_id


# Form fields a policy need not name (S3's rules for POST uploads), and the entries moto adds
# to the form it parsed (the bucket's name from the URL, the action it resolved).
_UNCONDITIONED = {"policy", "x-amz-signature", "file", "bucket", "bucketname", "action"}


def _check_conditions(conditions: list, form: dict[str, str], size: int) -> None:
    """S3's POST policy conditions: ``{"field": value}`` and ``["eq", "$field", value]`` exact,
    ``["starts-with", "$field", prefix]``, ``["content-length-range", min, max]`` on the file;
    every form field must be named by a condition."""
    from moto.s3.exceptions import EntityTooSmall, S3AccessDeniedError

    named = set()
    for condition in conditions:
        if isinstance(condition, dict):
            [(field, value)] = condition.items()
            operator = "eq"
        elif condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size < low:
                raise EntityTooSmall()
            if size > high:
                raise _entity_too_large()
            continue
        else:
            operator, field, value = condition
            field = field.removeprefix("$")
        field = field.lower()
        named.add(field)
        given = form.get(field, "")
        if (operator == "eq" and given != value) or (operator == "starts-with" and not given.startswith(value)):
            raise S3AccessDeniedError()  # "Invalid according to Policy: Policy Condition failed"
    unnamed = {f for f in form if f not in named and f not in _UNCONDITIONED and not f.startswith("x-ignore-")}
    if unnamed:
        raise S3AccessDeniedError()  # "Invalid according to Policy: Extra input fields"


def _entity_too_large():
    from moto.s3.exceptions import S3ClientError

    class TooLarge(S3ClientError):
        code = "EntityTooLarge"

        def __init__(self) -> None:
            super().__init__("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")

    return TooLarge()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# -- principals and their policies ------------------------------------------------------

def _principal(key_id: str):
    """moto's view of the IAM user (or assumed role) holding ``key_id``."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.s3.exceptions import S3InvalidAccessKeyIdError

    try:
        return create_access_key(account_id=DEFAULT_ACCOUNT_ID, partition="aws", access_key_id=key_id, headers={})
    except CreateAccessKeyFailure:
        raise S3InvalidAccessKeyIdError() from None


def _permitted(key_id: str, action: str, resource: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = {IAMPolicy(p).is_action_permitted(action, resource) for p in _principal(key_id).collect_policies()}
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


def _check_permitted(response, key_id: str, action: str, resource: str) -> None:
    from moto.s3.exceptions import S3AccessDeniedError

    if not _permitted(key_id, action, resource):
        raise S3AccessDeniedError()


def _request_key_id(response) -> str | None:
    authorization = response.headers.get("Authorization", "")
    if "Credential=" in authorization:
        return authorization.partition("Credential=")[2].partition("/")[0]
    query = dict(parse_qsl(response.request.environ.get("QUERY_STRING", ""), keep_blank_values=True))
    credential = query.get("X-Amz-Credential") or _form(response).get("x-amz-credential")
    return credential.partition("/")[0] if credential else None


def _refuse_missing_key_without_list(response, bucket_name: str | None, key_name: str | None) -> None:
    from moto.s3.exceptions import S3AccessDeniedError, S3ClientError

    if not (bucket_name and key_name) or response._get_action() != "GetObject":
        return
    try:
        if response.backend.get_object(bucket_name, key_name) is not None:
            return
    except S3ClientError:
        pass  # no such key or bucket
    key_id = _request_key_id(response)
    if key_id is None or not _permitted(key_id, "s3:ListBucket", _s3_arn(bucket_name, None)):
        raise S3AccessDeniedError()


def _s3_arn(bucket_name: str | None, key_name: str | None) -> str:
    return f"arn:aws:s3:::{bucket_name or '*'}" + (f"/{key_name}" if key_name else "")


def _dynamodb_table_arn(handler) -> str:
    body = getattr(handler, "body", None)
    name = body.get("TableName") if isinstance(body, dict) else None
    if not name:
        return "*"
    return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{name}"


def _secret_arn(handler) -> str:
    try:
        secret_id = handler._get_param("SecretId")
        return handler.backend.secrets[secret_id].arn if secret_id else "*"
    except Exception:  # no such secret (the action answers that itself), or no id in the request
        return "*"
