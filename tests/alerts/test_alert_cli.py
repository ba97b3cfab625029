"""``otonom-trader alerts test|outbox|deliver`` through a real argparse tree."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest
from alert_servers import BOT_TOKEN, CHAT_ID, LocalSMTPServer

from otonom_trader.alerts import AlertEngine
from otonom_trader.alerts.cli import register
from otonom_trader.persistence import Database
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


def run(argv: list[str], db: Path, overrides: list[str] | None = None) -> int:
    """Parse like the top-level CLI: it provides ``db`` and ``overrides``."""
    parser = argparse.ArgumentParser(prog="otonom-trader")
    parser.set_defaults(db=str(db), overrides=overrides or [])
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def alerts_yaml(tmp_path: Path, smtp_port: int) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "email:\n  enabled: true\n  smtp_host: 127.0.0.1\n"
        f"  smtp_port: {smtp_port}\n  use_tls: false\n  from_addr: bot@example.com\n"
        "  to_addrs: [ops@example.com]\n"
        f"telegram:\n  enabled: true\n  bot_token: '{BOT_TOKEN}'\n  chat_id: '{CHAT_ID}'\n"
    )
    return path


def test_alerts_test_sends_to_every_channel_and_prints_which_succeeded(
    tmp_path: Path,
    smtp_server: LocalSMTPServer,
    telegram_api: TelegramBotAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alerts_yaml(tmp_path, smtp_server.port)

    code = run(["alerts", "test", "--config", str(config)], tmp_path / "t.db")

    out = capsys.readouterr().out
    assert code == 0
    assert "2 of 2 channel(s) succeeded" in out
    assert "email" in out and "telegram" in out
    assert BOT_TOKEN not in out
    assert smtp_server.messages[0].subject == "[otonom-trader] Test alert"
    assert telegram_api.messages[0].chat_id == CHAT_ID


def test_alerts_test_exits_1_and_names_the_failed_channel(
    tmp_path: Path,
    smtp_server: LocalSMTPServer,
    telegram_api: TelegramBotAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alerts_yaml(tmp_path, smtp_server.port)
    telegram_api.fail_with = 500

    code = run(["alerts", "test", "--config", str(config)], tmp_path / "t.db")
    listed = run(["alerts", "outbox", "--config", str(config)], tmp_path / "t.db")

    out = capsys.readouterr().out
    assert (code, listed) == (1, 0)
    assert "FAILED" in out and "500" in out
    assert "1 of 2 channel(s) succeeded" in out
    assert "failed: 1" in out and "sent: 1" in out  # a failed test is not retried later


def test_alerts_test_without_channels_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["alerts", "test"], tmp_path / "t.db", overrides=[])

    assert code == 1
    assert "No alert channel is configured" in capsys.readouterr().out


def test_bad_override_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["alerts", "test"], tmp_path / "t.db", overrides=["alerts.max_attempts=0"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: alerts.max_attempts: must be at least 1, got 0"


def test_alerts_deliver_retries_due_rows(
    tmp_path: Path,
    smtp_server: LocalSMTPServer,
    telegram_api: TelegramBotAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alerts_yaml(tmp_path, smtp_server.port)
    db = Database(tmp_path / "t.db")
    telegram_api.fail_with = 500
    engine = AlertEngine(config, db=db)
    engine.notify_kill_switch("halt")
    with db.session() as session:  # make the retry due now instead of in a minute
        for rec in session.query(AlertOutboxRecord):
            if rec.next_attempt_at is not None:
                rec.next_attempt_at = rec.next_attempt_at - timedelta(minutes=5)
    db.dispose()
    telegram_api.fail_with = None

    code = run(["alerts", "deliver", "--config", str(config)], tmp_path / "t.db")

    assert code == 0
    assert "sent 1" in capsys.readouterr().out
    assert len(telegram_api.messages) == 1
