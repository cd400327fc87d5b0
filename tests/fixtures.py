"""Fixtures of real parts shared by the test tiers: the git server and the GitHub API double.

Imported by tests/conftest.py. They wire the two together: the git server accepts
exactly the tokens the GitHub double issued (installation tokens and personal tokens).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness import github_api, gitserver

TOKEN = "ghp_test_personal_token_0123456789"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def malformed_pem(label: str, body: str, *, end: bool = True) -> str:
    """A PEM-shaped text that is no key (bad inputs for tests), built at run time so no key-like literal is
    committed. ``end=False`` leaves out the END line, as a truncated paste would."""
    text = f"-----BEGIN {label}-----\n{body}\n"
    return text + (f"-----END {label}-----\n" if end else "")


@pytest.fixture
def github(tmp_path: Path) -> Iterator[github_api.GitHubDouble]:
    """A GitHub API double with user ``octo`` (token :data:`TOKEN`) and organisation ``acme``."""
    with github_api.GitHubDouble(tmp_path / "github") as double:
        double.add_user("octo")
        double.add_org("acme", owners=("octo",))
        double.add_personal_token(TOKEN, "octo")
        yield double


@pytest.fixture
def git_server(github: github_api.GitHubDouble) -> Iterator[gitserver.GitServer]:
    """A git smart-HTTP server over the double's repositories, accepting the double's tokens."""
    server = gitserver.GitServer(github.root, github.check_git_credentials)
    with server:
        github.web_url = f"http://127.0.0.1:{server.port}"
        yield server


@dataclasses.dataclass(frozen=True)
class App:
    """A GitHub App registered on the double, with its real RSA private key and an installation on acme."""

    app_id: int
    installation_id: int
    private_key: str


@pytest.fixture(scope="session")
def rsa_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def github_app(github: github_api.GitHubDouble, rsa_private_key: str) -> App:
    github.add_app(4242, rsa_private_key, slug="chkmate")
    installation_id = github.add_installation(4242, "acme")
    return App(4242, installation_id, rsa_private_key)
