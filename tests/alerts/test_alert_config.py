"""Reading the guide's alerts.yaml, the Hydra alerts group, and building Apprise URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from otonom_trader.alerts import AlertEngine, AlertsConfig, load_alerts_file
from otonom_trader.alerts.channels import MASKER, build_channels
from otonom_trader.config.compose import PROJECT_ROOT, load_config
from otonom_trader.config.errors import ConfigError

GUIDE_YAML = """
email:
  enabled: true
  smtp_host: "smtp.gmail.com"
  smtp_port: 587
  username: "your@gmail.com"
  password: ${oc.env:TEST_SMTP_PASSWORD}
  from_addr: "your@gmail.com"
  to_addrs:
    - "your@email.com"
telegram:
  enabled: true
  bot_token: ${oc.env:TEST_BOT_TOKEN}
  chat_id: 123456789
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return path


def test_guide_format_becomes_mailtos_and_tgram_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "app-pass-9f8e7d")
    monkeypatch.setenv("TEST_BOT_TOKEN", "555:tokenFromEnv42")

    engine = AlertEngine(str(write(tmp_path, GUIDE_YAML)))

    by_name = {c.name: c for c in engine.channels}
    assert by_name["email"].url.startswith("mailtos://your%40gmail.com:app-pass-9f8e7d@")
    assert "mode=starttls" in by_name["email"].url
    assert by_name["telegram"].url.startswith("tgram://555:tokenFromEnv42/123456789")
    assert "app-pass-9f8e7d" not in by_name["email"].masked_url
    assert "tokenFromEnv42" not in by_name["telegram"].masked_url
    assert engine.config.telegram.chat_id == "123456789"


def test_plain_smtp_without_tls_is_mailto() -> None:
    cfg = AlertsConfig()
    cfg.email.enabled, cfg.email.smtp_port, cfg.email.use_tls = True, 2525, False
    cfg.email.to_addrs = ["a@example.com"]

    [channel] = build_channels(cfg)

    assert channel.url.startswith("mailto://localhost:2525?")
    assert "mode=starttls" not in channel.url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email:\n  smtp_port: 99999\n", "alerts.yaml: email.smtp_port: must be a port"),
        ("email:\n  smtp_hots: x\n", "alerts.yaml: email.smtp_hots"),
        ("telegram:\n  enabled: true\n  chat_id: 1\n", "alerts.yaml: telegram.bot_token"),
        ("telegram:\n  bot_token: ${oc.env:NOT_SET_ANYWHERE_42}\n", "NOT_SET_ANYWHERE_42"),
        ("max_gap_minutes: -1\n", "alerts.yaml: max_gap_minutes: must be positive"),
        ("routes:\n  slack: {min_severity: error}\n", "alerts.yaml: routes: no channel named"),
        ("routes:\n  email: {min_severity: loud}\n", "routes.email.min_severity"),
        ("urls: ['nonsense://x']\n", "alerts.yaml: urls[0]: Apprise does not accept"),
        ("email: [1, 2\n", "alerts.yaml: not valid YAML"),
    ],
)
def test_bad_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as err:
        AlertEngine(path)

    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_alerts_file(tmp_path / "nope.yaml")


def test_example_file_loads_with_the_environment_it_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in {
        "OTONOM_SMTP_USER": "me@example.com",
        "OTONOM_SMTP_PASSWORD": "app-password-1",
        "OTONOM_ALERT_EMAIL": "ops@example.com",
        "OTONOM_TELEGRAM_BOT_TOKEN": "777:exampleToken",
        "OTONOM_TELEGRAM_CHAT_ID": "42",
    }.items():
        monkeypatch.setenv(var, value)

    cfg = load_alerts_file(PROJECT_ROOT / "config" / "alerts.yaml.example")

    assert cfg.email.enabled and cfg.email.to_addrs == ["ops@example.com"]
    assert cfg.telegram.chat_id == "42"
    assert cfg.routes["telegram"].min_severity == "warning"


def test_hydra_groups_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", "777:exampleToken")
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", "42")

    _, default = load_config([])
    _, both = load_config(["alerts=email_telegram", "alerts.email.smtp_port=2525"])

    assert build_channels(default.alerts) == []
    assert [c.name for c in build_channels(both.alerts)] == ["email", "telegram"]


def test_url_tokens_are_registered_as_secrets() -> None:
    cfg = AlertsConfig(urls=["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"])

    [channel] = build_channels(cfg)

    assert channel.name == "url1"
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in channel.masked_url
    assert MASKER.mask("token TIiajkdnlazkcOXrIdevi7FQ") == "token ****"


def test_the_librarys_alert_engine_refuses_a_deeply_nested_file_in_one_line(
    tmp_path: Path,
) -> None:
    # The guide's AlertEngine("config/alerts.yaml"), not only the CLI, reads files bounded.
    from otonom_trader.alerts import AlertEngine
    from otonom_trader.config.errors import ConfigError

    nested = tmp_path / "alerts.yaml"
    nested.write_text("urls: " + "[" * 200_000 + "\n")
    bounded = tmp_path / "bounded.yaml"
    bounded.write_text("max_attempts: 1000000000\n")

    with pytest.raises(ConfigError) as deep:
        AlertEngine(str(nested))
    with pytest.raises(ConfigError, match="max_attempts"):
        AlertEngine(str(bounded))
    assert "nested" in str(deep.value) and "\n" not in str(deep.value)
