"""Settings come from CHKMATE_* variables once, and bad values are refused with the variable named."""

import logging
from pathlib import Path

import pytest

from chkmate import settings


def test_defaults_without_variables() -> None:
    assert settings.Settings.from_env({"HOME": "/root"}) == settings.Settings()


def test_values_are_converted() -> None:
    parsed = settings.Settings.from_env(
        {
            "CHKMATE_NAMESPACES": "team-a, team-b",
            "CHKMATE_RETRY_DELAY": "2m",
            "CHKMATE_RESYNC_INTERVAL": "15",
            "CHKMATE_WORK_DIR": "/var/cache/chkmate",
            "CHKMATE_PLAN_HISTORY": "3",
            "CHKMATE_DEBUG": "true",
            "CHKMATE_PEERING": "chkmate",
        }
    )
    assert parsed.namespaces == ("team-a", "team-b")
    assert parsed.retry_delay == 120.0 and parsed.resync_interval == 15.0
    assert parsed.work_dir == Path("/var/cache/chkmate")
    assert parsed.plan_history == 3 and parsed.debug is True and parsed.peering == "chkmate"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CHKMATE_PLAN_HISTORY": "many"}, "CHKMATE_PLAN_HISTORY"),
        ({"CHKMATE_DEBUG": "maybe"}, "expected true or false"),
        ({"CHKMATE_RETRY_DELAY": "soon"}, "CHKMATE_RETRY_DELAY"),
        ({"CHKMATE_NAMESPACE": "x"}, "is not a chkmate setting"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(settings.SettingsError, match=words):
        settings.Settings.from_env(env)


def test_runner_settings() -> None:
    parsed = settings.Settings.from_env(
        {
            "CHKMATE_RUNNER_IMAGE": "registry.acme.test/chkmate:0.1.0",
            "CHKMATE_RUNNER_SERVICE_ACCOUNT": "chkmate-runner",
            "CHKMATE_RUNNER_GRACE": "2m",
            "CHKMATE_RUNNER_TTL": "1h",
            "CHKMATE_RUNNER_POLL_INTERVAL": "500ms",
        }
    )
    assert (parsed.runner_image, parsed.runner_service_account) == (
        "registry.acme.test/chkmate:0.1.0",
        "chkmate-runner",
    )
    assert (parsed.runner_grace, parsed.runner_ttl, parsed.runner_poll_interval) == (120.0, 3600.0, 0.5)
    assert settings.Settings().runner_image == ""  # Job runs say it is missing; the chart always sets it


@pytest.mark.parametrize("debug", [True, False])
def test_chkmate_debug_turns_on_debug_logs_of_the_operator_and_kopf_only(debug: bool) -> None:
    from chkmate import main

    saved = {name: logging.getLogger(name).level for name in (*main.LOGGERS, "aiohttp")}
    try:
        main.configure_logging(debug)
        assert logging.getLogger("chkmate.controllers.webhook_marks").isEnabledFor(logging.DEBUG) is debug
        assert logging.getLogger("kopf.objects").isEnabledFor(logging.DEBUG) is debug
        assert not logging.getLogger("aiohttp.client").isEnabledFor(logging.DEBUG)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
