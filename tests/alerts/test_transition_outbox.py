"""Kill-switch transitions are outbox events (issue 16, points 1, 2 and 4).

Every transition is one row per channel keyed by its ``kill_switch_events`` id, written in the
state change's transaction; a repeat of the same transition adds nothing, a new transition with
the same wording is a new row; rate limits batch, never drop; a late message says the state now;
the CLI's manual trips and resets are announced; ``alerts outbox`` / ``alerts deliver`` show the
history and what waits, titles printed literally.
"""

from __future__ import annotations

import argparse
import io
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alert_servers import LocalSMTPServer, ManualClock
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from otonom_trader.alerts import AlertEngine, AlertsConfig, EmailAlertConfig
from otonom_trader.alerts.cli import register
from otonom_trader.cli import main
from otonom_trader.daemon import TradingDaemon
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.persistence import Database
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.guardrail_models import KillSwitchEventRecord

TRIGGERED = "[otonom-trader] KILL-SWITCH TRIGGERED [paper]: trading halted"
RESET = "[otonom-trader] KILL-SWITCH RESET [paper]: trading resumed"


def email_config(server: LocalSMTPServer, **overrides: object) -> AlertsConfig:
    cfg = AlertsConfig(
        email=EmailAlertConfig(
            enabled=True,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            use_tls=False,
            from_addr="otonom@example.com",
            to_addrs=["ops@example.com"],
        )
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def email_overrides(server: LocalSMTPServer) -> list[str]:
    return [
        "alerts.email.enabled=true",
        "alerts.email.smtp_host=127.0.0.1",
        f"alerts.email.smtp_port={server.port}",
        "alerts.email.use_tls=false",
        "alerts.email.from_addr=otonom@example.com",
        "alerts.email.to_addrs=[ops@example.com]",
        "alerts.max_gap_minutes=600",
    ]


def switch_with_alerts(db: Database, engine: AlertEngine, book: str = "paper") -> KillSwitch:
    return KillSwitch(db, GuardrailConfig(), book, on_transition_tx=engine.record_transition)


def kill_switch_rows(db: Database) -> list[AlertOutboxRecord]:
    with db.session() as session:
        return list(
            session.scalars(
                select(AlertOutboxRecord)
                .where(AlertOutboxRecord.event == "kill_switch")
                .order_by(AlertOutboxRecord.id)
            )
        )


def event_ids(db: Database, book: str | None = None) -> list[int]:
    query = select(KillSwitchEventRecord.id).order_by(KillSwitchEventRecord.id)
    if book is not None:
        query = query.where(KillSwitchEventRecord.book == book)
    with db.session() as session:
        return list(session.scalars(query))


def transition_numbers(texts: list[str]) -> list[int]:
    """The ``Transition #N`` numbers the texts name, in order."""
    return [int(n) for text in texts for n in re.findall(r"Transition #(\d+)", text)]


def test_each_transition_is_a_row_keyed_by_its_id_and_a_repeat_adds_nothing(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(email_config(smtp_server), db=sqlite_db, clock=clock)
    switch = switch_with_alerts(sqlite_db, engine)

    first = switch.trip("exchange incident", clock.now, "alice")
    [event] = switch.history(1)
    with sqlite_db.session() as session:  # the same transition recorded again (a retry)
        assert first is not None
        engine.record_transition(session, first, event.id)
    switch.reset("all clear", clock.advance(minutes=1), "bob")
    switch.trip("exchange incident", clock.advance(minutes=1), "alice")  # same wording, new
    switch.trip("exchange incident", clock.advance(minutes=1), "alice")  # already halted
    report = engine.deliver_pending(clock.now)

    rows = kill_switch_rows(sqlite_db)
    events = event_ids(sqlite_db)
    assert len(events) == 4  # every action is audited ...
    assert [r.transition_id for r in rows] == events[:3]  # ... three of them changed the state
    assert [(r.book, r.state_after) for r in rows] == [
        ("paper", "active"),
        ("paper", "clear"),
        ("paper", "active"),
    ]
    assert report.sent == tuple(r.id for r in rows)
    assert [m.subject for m in smtp_server.messages] == [TRIGGERED, RESET, TRIGGERED]
    assert transition_numbers([m.text for m in smtp_server.messages]) == events[:3]


def test_two_processes_tripping_at_once_announce_the_one_transition_once(
    smtp_server: LocalSMTPServer, tmp_path: Path, clock: ManualClock
) -> None:
    # Two "processes": separate engines, databases objects and switches on one SQLite file.
    dbs = [Database(tmp_path / "shared.db") for _ in range(2)]
    engines = [AlertEngine(email_config(smtp_server), db=db, clock=clock) for db in dbs]
    switches = [switch_with_alerts(db, e) for db, e in zip(dbs, engines, strict=True)]
    start = threading.Barrier(2)
    results: list[object] = []

    def trip(switch: KillSwitch) -> None:
        start.wait()
        results.append(switch.trip("operator halt", clock.now, "ops"))

    threads = [threading.Thread(target=trip, args=(s,)) for s in switches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    engines[0].deliver_pending(clock.now)
    engines[1].deliver_pending(clock.now)

    assert sum(r is not None for r in results) == 1  # one flipped the state, one found it done
    assert len(event_ids(dbs[0])) == 2  # both trips are audited
    assert len(kill_switch_rows(dbs[0])) == 1
    assert [m.subject for m in smtp_server.messages] == [TRIGGERED]
    for db in dbs:
        db.dispose()


def test_a_transition_whose_announcement_cannot_be_written_does_not_happen(
    sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(AlertsConfig(), db=sqlite_db, clock=clock)
    switch = switch_with_alerts(sqlite_db, engine)
    with sqlite_db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alert_outbox")

    with pytest.raises(OperationalError):
        switch.trip("exchange incident", clock.now, "alice")

    assert switch.status() == (False, None)  # rolled back with its outbox row: never silent
    assert event_ids(sqlite_db) == []


def test_a_rate_limited_channel_gets_every_transition_batched_and_the_state_now(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    cfg = email_config(smtp_server, rate_limit_per_channel_per_hour=2)
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock, deliver_immediately=False)
    switch = switch_with_alerts(sqlite_db, engine)
    for n in range(5):  # trip, reset, trip, reset, trip
        action = switch.trip if n % 2 == 0 else switch.reset
        action(f"step {n}", clock.advance(minutes=1), "ops")

    first_pass = engine.deliver_pending(clock.now)
    switch.reset("step 5", clock.advance(minutes=1), "ops")
    while_limited = engine.deliver_pending(clock.now)
    waiting = kill_switch_rows(sqlite_db)[-1]
    after_window = engine.deliver_pending(clock.advance(minutes=61))

    rows = kill_switch_rows(sqlite_db)
    mails = smtp_server.messages
    assert len(rows) == 6 and {r.status for r in rows} == {"sent"}
    assert len(first_pass.sent) == 5  # two messages: one transition, then four in one
    assert [m.subject for m in mails[:2]] == [
        TRIGGERED,
        "[otonom-trader] KILL-SWITCH: 4 transitions; now paper ACTIVE",
    ]
    batch = mails[1].text
    assert transition_numbers([batch]) == [r.transition_id for r in rows[1:5]]
    assert "None was dropped" in batch
    assert "Kill-switch of book 'paper' is now ACTIVE: trading is HALTED" in batch
    assert [r.batched_into for r in rows[:5]] == [None, None, rows[1].id, rows[1].id, rows[1].id]
    assert while_limited.sent == () and waiting.status == "pending"
    assert waiting.note is not None and waiting.note.startswith("rate limited until")
    assert after_window.sent == (rows[5].id,)
    assert [m.subject for m in mails] == [mails[0].subject, mails[1].subject, RESET]
    assert rows[5].note is None and rows[5].last_error is None


def test_a_late_message_says_the_state_at_sending_and_waits_for_its_turn(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(email_config(smtp_server), db=sqlite_db, clock=clock)
    switch = switch_with_alerts(sqlite_db, engine)
    smtp_server.stop()
    switch.trip("exchange incident", clock.now, "alice")
    down = engine.deliver_pending(clock.now)
    switch.reset("all clear", clock.advance(seconds=10), "bob")
    behind = engine.deliver_pending(clock.now)  # the reset must not overtake the trip
    smtp_server.start()

    back = engine.deliver_pending(clock.advance(minutes=2))

    rows = kill_switch_rows(sqlite_db)
    assert len(down.retrying) == 1 and behind.attempted == 0 and behind.deferred == (rows[1].id,)
    assert back.sent == (rows[0].id, rows[1].id)
    first, second = smtp_server.messages
    assert (first.subject, second.subject) == (TRIGGERED, RESET)
    assert "1 later transition(s) of this book follow" in first.text
    assert "The switch is now CLEAR (trading resumed)" in first.text
    assert "Note (sent" not in second.text  # the newest word needs no note
    stored = engine.outbox.get(rows[0].id)
    assert stored is not None and "The switch is now CLEAR" in stored.body  # what was sent
    assert stored.last_error is None and stored.attempts == 2


def test_manual_trips_and_resets_from_the_cli_are_emailed_in_order_with_cycles_between(
    smtp_server: LocalSMTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per printed row
    db_path = tmp_path / "trader.db"
    overrides = email_overrides(smtp_server)
    options = [arg for o in overrides for arg in ("-o", o)]

    def cli(*argv: str) -> int:
        return main(["--db", str(db_path), *options, "kill-switch", *argv])

    # Cycles run five minutes "later" so a retry whose backoff is one minute is due.
    daemon = TradingDaemon(
        db_path=db_path,
        overrides=overrides,
        clock=lambda: datetime.now(UTC) + timedelta(minutes=5),
    )
    smtp_server.stop()
    assert cli("trip", "--reason", "exchange incident", "--actor", "alice") == 0
    tripped = capsys.readouterr().out
    smtp_server.start()
    halted = daemon.run_once()
    assert daemon.context.alerts.wait_idle(30)
    after_first_cycle = len(smtp_server.messages)
    assert cli("reset", "--reason", "all clear", "--actor", "bob") == 0
    daemon.run_once()
    assert cli("trip", "--reason", "exchange incident", "--actor", "alice") == 0
    out = capsys.readouterr().out
    resumed_then_halted = daemon.run_once()
    assert daemon.context.alerts.wait_idle(30)
    status = daemon.context.kill_switch.status()
    daemon.close()

    assert re.search(r"email: pending, next try \d\d:\d\d:\d\d UTC \(.*refused", tripped)
    assert halted.guard_active and after_first_cycle == 1  # the cycle delivered the held trip
    assert "email: sent" in out
    assert resumed_then_halted.guard_active and status[0] is True
    mails = smtp_server.messages
    every = [subject.replace("[paper]", "[*]") for subject in (TRIGGERED, RESET, TRIGGERED)]
    assert [m.subject for m in mails] == every
    db = Database(db_path)
    # The emergency stop (no scope) is announced once, as the all-books switch; the paper book's
    # own events (taking the stop over, the resets) are recorded, not announced again.
    assert transition_numbers([m.text for m in mails]) == event_ids(db, book="*")
    assert mails[-1].text.startswith("Kill-switch of EVERY book (emergency stop) is now ACTIVE")
    assert {(r.transition_id is not None, r.status) for r in kill_switch_rows(db)} == {
        (True, "sent")
    }
    db.dispose()


def run_alerts_cli(argv: list[str], db: Path, overrides: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="otonom-trader")
    parser.set_defaults(db=str(db), overrides=overrides)
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_outbox_lists_the_history_and_deliver_says_what_waits_and_when(
    smtp_server: LocalSMTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    db_path = tmp_path / "trader.db"
    overrides = email_overrides(smtp_server)
    db = Database(db_path)
    engine = AlertEngine(email_config(smtp_server), db=db)
    switch = switch_with_alerts(db, engine)
    smtp_server.stop()
    switch.trip("exchange incident", datetime.now(UTC), "alice")
    engine.deliver_pending()
    switch.reset("all clear", datetime.now(UTC), "bob")

    run_alerts_cli(["alerts", "outbox"], db_path, overrides)
    listed = capsys.readouterr().out
    waiting_code = run_alerts_cli(["alerts", "deliver"], db_path, overrides)
    waiting = capsys.readouterr().out
    smtp_server.start()
    with db.session() as session:  # the retry time has come (instead of waiting a minute)
        session.execute(
            update(AlertOutboxRecord).values(next_attempt_at=datetime.now(UTC) - timedelta(1))
        )
    sent_code = run_alerts_cli(["alerts", "deliver"], db_path, overrides)
    sent = capsys.readouterr().out
    run_alerts_cli(["alerts", "outbox"], db_path, overrides)
    history = capsys.readouterr().out
    db.dispose()

    rows = [line for line in listed.splitlines() if "KILL-SWITCH" in line]
    assert len(rows) == 2
    assert TRIGGERED in rows[1] and RESET in rows[0]  # newest first, prefix printed literally
    assert "kill_switch" in rows[1] and "#1 paper → active" in rows[1]
    assert "1/20" in rows[1] and "pending, next try" in rows[1] and "refused" in rows[1]
    assert "0/20" in rows[0] and "#2 paper → clear" in rows[0]
    assert waiting_code == 0 and "sent 0" in waiting
    assert re.search(r"row 1 .*attempt 1/20 done, next try .* UTC \(in \d+ s\).*refused", waiting)
    assert "row 2 (email, kill_switch #2)" in waiting and "waits behind row 1" in waiting
    assert sent_code == 0 and "sent 2" in sent and "nothing pending" in sent
    sent_rows = [line for line in history.splitlines() if "KILL-SWITCH" in line]
    assert all("sent " in line and "refused" not in line for line in sent_rows)
    assert [m.subject for m in smtp_server.messages] == [TRIGGERED, RESET]


def test_the_drill_records_each_of_its_transitions_in_its_scratch_outbox(tmp_path: Path) -> None:
    from rich.console import Console

    from otonom_trader.guardrails.drill import run_drill
    from otonom_trader.mode import ExecutionMode

    report = run_drill(
        GuardrailConfig(), ExecutionMode.PAPER, Console(file=io.StringIO()), workdir=tmp_path
    )

    db = Database(tmp_path / "drill.db")
    rows = kill_switch_rows(db)
    assert report.complete and len(report.alerts) == 6
    assert [r.transition_id for r in rows] == event_ids(db)
    assert [r.state_after for r in rows] == ["active", "clear"] * 3
    assert {(r.book, r.channel, r.status) for r in rows} == {("drill", "none", "suppressed")}
    db.dispose()
