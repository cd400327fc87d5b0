"""Fixtures of real parts shared by the test tiers: the git server and the GitHub API double.

Imported by tests/conftest.py. They wire the two together: the git server accepts
exactly the tokens the GitHub double issued (installation tokens and personal tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import github_api, gitserver

TOKEN = "ghp_test_personal_token_0123456789"


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
