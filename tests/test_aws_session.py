"""aws/session.py: clients reach the endpoint given, and botocore failures become one-line UserErrors."""

from __future__ import annotations

import pytest

from betcycle.aws.session import Aws, aws_errors, error_message
from betcycle.errors import UserError


def test_clients_reach_the_moto_endpoint_with_standard_retries(aws: str) -> None:
    s3 = Aws().client("s3")
    assert s3.meta.endpoint_url == aws
    assert s3.meta.config.retries["mode"] == "standard"
    s3.create_bucket(Bucket="bucket-one", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert [
        b["Name"]
        for b in Aws(endpoint_url=aws).paginate("s3", "list_objects_v2", "Contents", Bucket="bucket-one")
    ] == []


def test_a_client_error_is_one_line_naming_what_failed(aws: str) -> None:
    with pytest.raises(UserError) as e, aws_errors("reading bucket nope"):
        Aws().client("s3").head_bucket(Bucket="nope")
    assert e.value.message.startswith("reading bucket nope: 404")


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("AccessDenied", "lack this permission"),
        ("ThrottlingException", "throttled"),
        ("ExpiredToken", "expired"),
    ],
)
def test_access_throttling_and_credential_errors_say_what_to_do(code: str, hint: str) -> None:
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")
    err = error_message(exc, "doing x")
    assert err.message == f"doing x: {code}: m"
    assert hint in (err.hint or "")


def test_no_credentials_is_one_message(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(UserError, match="no AWS credentials found"), aws_errors("listing buckets"):
        Aws(endpoint_url="http://127.0.0.1:9").client("s3").list_buckets()
