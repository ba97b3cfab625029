"""The activity log file: under ``$OTONOM_HOME/logs``, rotated by size, secrets masked."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from otonom_trader.operator.logfiles import (
    LOG_FILE_NAME,
    configured_secrets,
    install_file_logging,
    log_file_path,
)

API_SECRET = "hunter2-api-secret-0123456789"
BOT_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"  # shaped like a real token
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _read_all(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "logs").glob(f"{LOG_FILE_NAME}*")))


def test_the_file_rotates_at_its_size_and_keeps_the_given_backups(tmp_path: Path) -> None:
    path = install_file_logging(tmp_path, max_bytes=2_000, backups=2)
    log = logging.getLogger("otonom_trader.test.rotation")

    for index in range(200):
        log.info("cycle line %03d %s", index, "x" * 40)
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert path == log_file_path(tmp_path) == tmp_path / "logs" / LOG_FILE_NAME
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    assert all(p.stat().st_size <= 2_000 for p in path.parent.iterdir())
    assert "cycle line 199" in path.read_text()  # the newest line is in the current file


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    install_file_logging(tmp_path, [API_SECRET])
    log = logging.getLogger("otonom_trader.test.masking")

    log.info("signing with %s", API_SECRET)
    log.warning("alert to https://ops:s3cr3t-pass@hooks.example.com/notify failed")
    log.warning("POST https://api.telegram.org/bot%s/sendMessage", BOT_TOKEN)
    try:
        raise RuntimeError(f"exchange refused key {API_SECRET}")
    except RuntimeError:
        log.exception("cycle failed")
    logging.getLogger("some.library").warning("header X-KEY: %s", API_SECRET)
    for handler in logging.getLogger().handlers:
        handler.flush()

    text = _read_all(tmp_path)
    assert API_SECRET not in text and "s3cr3t-pass" not in text
    assert BOT_TOKEN not in text and BOT_TOKEN.split(":")[1] not in text
    assert "signing with ****" in text and "https://ops:****@hooks.example.com" in text
    assert "RuntimeError: exchange refused key ****" in text
    assert "header X-KEY: ****" in text  # other libraries' warnings are masked too


def test_a_second_install_adds_secrets_to_the_same_handler(tmp_path: Path) -> None:
    first = install_file_logging(tmp_path, ["first-secret-value"])
    second = install_file_logging(tmp_path / "elsewhere", ["second-secret-value"])
    logging.getLogger("otonom_trader.test").info("first-secret-value second-secret-value")
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert first == second
    assert "**** ****" in first.read_text()
    assert not (tmp_path / "elsewhere").exists()


def test_configured_secrets_are_every_key_token_and_url_password() -> None:
    from otonom_trader.config.schema import AppConfig

    app = AppConfig()
    app.broker.api_key, app.broker.api_secret = "key-123456", "secret-123456"
    app.alerts.telegram.bot_token = BOT_TOKEN
    app.alerts.email.password = "mail-pass-1"
    app.db.url = "postgresql+psycopg://bot:db-pass-1@db.example/otonom"
    app.alerts.urls = ["json://hook:hook-pass-1@hooks.example/x"]

    secrets = configured_secrets(app)

    assert set(secrets) == {
        "key-123456",
        "secret-123456",
        BOT_TOKEN,
        "mail-pass-1",
        "db-pass-1",
        "hook-pass-1",
    }


def test_daemon_once_writes_the_log_file_without_the_broker_secret(tmp_path: Path) -> None:
    broker_yaml = tmp_path / "broker.yaml"
    broker_yaml.write_text(
        f"kind: sim\ntestnet: true\napi_key: key-abcdef\napi_secret: {API_SECRET}\n"
    )
    home = tmp_path / "home"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otonom_trader.cli",
            "daemon-once",
            "--strategy",
            str(FIXTURES / "always_buy_v1.0.yaml"),
            "--broker-config",
            str(broker_yaml),
            "--mode",
            "shadow",
            "-o",
            "alerts.enabled=false",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, OTONOM_HOME=str(home)),
        cwd=tmp_path,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    text = _read_all(home)
    assert "otonom_trader" in text  # the cycle's own lines are there
    assert API_SECRET not in text
