"""One way to reach AWS: the usual credential chain, an optional endpoint, standard retries, one-line errors.

Every command builds its clients through `Aws`, so `--region`, `--profile` and `--endpoint-url` (or the
`AWS_ENDPOINT_URL` variable boto3 reads itself) mean the same everywhere, retries use botocore's `standard`
mode, and any botocore failure reaches the user as one `UserError` (exit 2) instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from betcycle.errors import UserError

#: botocore's `standard` retry mode: exponential backoff with jitter on throttling and transient errors
RETRIES = {"mode": "standard", "max_attempts": 5}

_ACCESS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure"}
_THROTTLE = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "SignatureDoesNotMatch",
}


@dataclass
class Aws:
    """Options shared by every AWS command; `client(name)` is cached per service."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def session(self) -> Any:
        if self._session is None:
            import boto3

            with aws_errors("starting an AWS session"):
                self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
            with aws_errors(f"creating the {service} client"):
                self._clients[service] = self.session().client(
                    service, endpoint_url=endpoint, config=Config(retries=dict(RETRIES))
                )
        return self._clients[service]

    @property
    def region_name(self) -> str:
        name = self.client("sts").meta.region_name
        return str(name)

    def paginate(self, service: str, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        """Every item under `key` across all pages of `operation` (boto3's paginator)."""
        paginator = self.client(service).get_paginator(operation)
        with aws_errors(f"{service} {operation}"):
            for page in paginator.paginate(**kwargs):
                yield from page.get(key, [])


def error_message(exc: BaseException, doing: str) -> UserError:
    """A botocore exception as one line saying what failed and what to do."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return UserError(
            f"{doing}: no AWS credentials found",
            hint="configure the usual chain (AWS_PROFILE / --profile, AWS_ACCESS_KEY_ID, SSO, an instance role)",
        )
    if isinstance(exc, bx.ProfileNotFound):
        return UserError(f"{doing}: {exc}", hint="list profiles with `aws configure list-profiles`")
    if isinstance(exc, bx.NoRegionError):
        return UserError(
            f"{doing}: no AWS region", hint="pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return UserError(f"{doing}: cannot reach AWS ({exc})", hint="check --endpoint-url / the network")
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", "")).strip()
        text = f"{doing}: {code}: {message}" if message else f"{doing}: {code}"
        if code in _ACCESS:
            return UserError(
                text, hint="the credentials in use lack this permission (see docs/infrastructure.md)"
            )
        if code in _THROTTLE:
            return UserError(text, hint="AWS throttled the requests past the retries; run it again later")
        if code in _CREDENTIALS:
            return UserError(
                text, hint="the credentials are invalid or expired; refresh them (e.g. aws sso login)"
            )
        return UserError(text)
    if isinstance(exc, bx.BotoCoreError):
        return UserError(f"{doing}: {exc}")
    raise exc


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn any botocore failure inside the block into one UserError naming what was being done."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise error_message(exc, doing) from exc
