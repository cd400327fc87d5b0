"""Secret redaction: known values in every travelling form, well-known token shapes, sensitive names."""

import base64
import urllib.parse

import pytest

from chkmate.domain import redaction

R = redaction.REDACTED
SECRET = "s3cr3t/pa$$word+x"


@pytest.mark.parametrize(
    ("form", "label"),
    [
        (SECRET, "as is"),
        (base64.b64encode(SECRET.encode()).decode(), "base64"),
        (base64.b64encode(SECRET.encode()).decode().rstrip("="), "base64 without padding"),
        (base64.urlsafe_b64encode(SECRET.encode()).decode(), "url-safe base64"),
        (base64.b64encode(SECRET.encode() + b"\n").decode(), "base64 of `echo` output"),
        (urllib.parse.quote(SECRET, safe=""), "url-encoded"),
        (urllib.parse.quote_plus(SECRET + " y", safe=""), "form-encoded"),
    ],
)
def test_known_values_are_redacted_in_their_travelling_forms(form: str, label: str) -> None:
    secrets = [SECRET, SECRET + " y"]
    assert redaction.redact(f"value = {form} end", secrets) == f"value = {R} end", label


def test_secret_inside_a_longer_base64_stream_is_redacted_at_every_alignment() -> None:
    for prefix in ("u:", "us:", "use:"):  # the secret starts at each offset of a 3-byte group
        blob = base64.b64encode(f"{prefix}{SECRET}@tail".encode()).decode()
        assert redaction.redact(f"auth = {blob}") == f"auth = {blob}"  # no pattern knows it: the value does
        out = redaction.redact(f"auth = {blob}", [SECRET])
        assert R in out and blob not in out, prefix


def test_values_are_matched_json_escaped_stripped_and_longest_first() -> None:
    pem_like = 'line one\nline "two"'
    assert redaction.redact('key = "line one\\nline \\"two\\""', [pem_like]) == f'key = "{R}"'
    assert redaction.redact("token=abcd1234", ["abcd1234\n"]) == f"token={R}"
    # The longer value wins: no tail of it is left behind.
    assert redaction.redact("x=abcd1234efgh", ["abcd1234", "abcd1234efgh"]) == f"x={R}"


def test_short_values_are_ignored_so_text_is_not_shredded() -> None:
    text = "on a plan of 1 to add"
    assert redaction.redact(text, ["on", "a", "1", "add", "   "]) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token ghp_" + "A1" * 18, f"token {R}"),
        ("ghs_" + "b" * 36 + " used", f"{R} used"),
        ("pat=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", f"pat={R}"),
        ("access_key = AKIAIOSFODNN7EXAMPLE", f"access_key = {R}"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"Authorization: Bearer {R}"),
        ('"authorization": "token abc123"', f'"authorization": "token {R}"'),
        ("curl -H 'bearer abcdefghijklmnop0123'", f"curl -H 'bearer {R}'"),
        (
            "git remote https://x-access-token:hunter22@github.com/o/r",
            f"git remote https://x-access-token:{R}@github.com/o/r",
        ),
        (
            "k = <<EOT\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5\n-----END RSA PRIVATE KEY-----\nEOT",
            f"k = <<EOT\n{R}\nEOT",
        ),
        (
            'pem = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0\\n-----END PRIVATE KEY-----\\n"',
            f'pem = "{R}\\n"',
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmUAAAAEbm9uZQ\nPlan: 1 to add",
            f"{R}\nPlan: 1 to add",
        ),
    ],
)
def test_well_known_token_shapes_are_redacted_without_being_told(text: str, expected: str) -> None:
    assert redaction.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'authorization = "NONE"',  # aws_api_gateway_method
        "the bearer of good news",
        "ssh://git@github.com/o/r and http://localhost:8080/x",
        "AKIA is how AWS access key ids start",
        '  + ami = "ami-0123456789abcdef0"',
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redaction.redact(text, ["unrelated-secret"]) == text


def test_redaction_is_idempotent() -> None:
    text = "Authorization: Bearer abcdefghijklmnop0123 https://u:p4ssw0rd@h ghp_" + "z" * 36 + " " + SECRET
    once = redaction.redact(text, [SECRET])
    assert redaction.redact(once, [SECRET]) == once
    assert SECRET not in once and "p4ssw0rd" not in once


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_SESSION_TOKEN", True),
        ("AWS_ACCESS_KEY_ID", True),  # an id, but of a live credential: hidden by choice
        ("ARM_CLIENT_SECRET", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("TF_TOKEN_app_terraform_io", True),
        ("TF_VAR_db_password", True),
        ("DB_PASS", True),
        ("DB_PASSWD", True),
        ("ssh_passphrase", True),
        ("api_key", True),
        ("apiKey", True),
        ("APIKey", True),
        ("STRIPE_APIKEY", True),
        ("private_key_pem", True),
        ("GITHUB_TOKEN", True),
        ("kms_key_arn", False),
        ("key_name", False),
        ("KEY_VAULT_NAME", False),
        ("ssh_public_key", False),
        ("MONKEY_COUNT", False),
        ("PWD", False),
        ("region", False),
        ("private_subnet_ids", False),
        ("instance_type", False),
    ],
)
def test_sensitive_names(name: str, sensitive: bool) -> None:
    assert redaction.is_sensitive_name(name) is sensitive


def test_sensitive_keys_and_the_values_they_hold_at_any_depth() -> None:
    variables = {
        "region": "eu-west-1",
        "db_password": "hunter2!",
        "pin_secret": 73519,
        "enabled_token": True,
        "database": {"name": "app", "credentials": {"user": "admin", "password": "p4ss-word"}},
        "users": [{"name": "a", "api_key": "k-123456"}, "plain"],
        "tags": {"owner": "team"},
    }
    assert redaction.sensitive_keys(variables) == {"db_password", "pin_secret", "enabled_token"}
    assert sorted(redaction.secrets_in(variables)) == sorted(["hunter2!", "73519", "admin", "p4ss-word", "k-123456"])
