"""Suite-wide test setup."""

import asyncio

import pytest

from tests.fixtures import git_server, github, github_app, rsa_private_key  # noqa: F401  (fixtures shared by every tier)


@pytest.fixture(scope="session", autouse=True)
def _no_implicit_event_loop() -> None:
    # looptime 0.9 asks the policy for a loop during sync tests; with no current loop set it creates one
    # that nobody closes, and the ResourceWarning fails the session (warnings are errors).
    asyncio.set_event_loop(None)
