"""The promotion workflow: record evidence, judge the next gate, advance, roll back.

::

    status    every gate of the version, judged now from what the database holds
    check     record the evidence given (a backtest's metrics.json; the live key's audit when a
              production broker is configured), then judge the next gate
    advance   check, and move to the next stage when every check passes — or with
              force=True and a reason, recorded with the failing checks
    rollback  live → shadow, recorded, and the kill-switch of every account the version traded
              LIVE is tripped (the guardrails' own ``KillSwitch.trip``)

The orchestrator only wires the store, the gates and the kill-switch; the rules live in
``gates.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import DaemonRun
from otonom_trader.promotion.config import PromotionConfig
from otonom_trader.promotion.evidence import load_backtest_metrics
from otonom_trader.promotion.gates import (
    BACKTEST,
    GATES,
    KEY_AUDIT,
    Check,
    GateInputs,
    GateResult,
)
from otonom_trader.promotion.live_gate import is_production_account
from otonom_trader.promotion.stages import Stage, StrategyIdentity
from otonom_trader.promotion.store import PromotionStore, VersionState


@dataclass(frozen=True)
class AdvanceOutcome:
    """What ``advance`` did: the gate as judged, and whether (and how) the version moved."""

    gate: GateResult | None
    moved: bool
    forced: bool
    version: VersionState


class PromotionWorkflow:
    """The workflow over one database, with the composed configuration."""

    def __init__(self, db: Database, app: AppConfig, promotion: PromotionConfig) -> None:
        self.db = db
        self.app = app
        self.config = promotion
        self.store = PromotionStore(db)

    def version(self, identity: StrategyIdentity, now: datetime) -> VersionState:
        """The version's state (registered at research the first time it is seen)."""
        return self.store.version(identity, now)

    def judge(self, version: VersionState, now: datetime) -> GateResult | None:
        """The gate out of the version's stage, judged now; ``None`` at live."""
        gate = GATES.get(version.stage)
        return gate(self._inputs(version, now)) if gate is not None else None

    def judge_all(self, version: VersionState, now: datetime) -> list[GateResult]:
        """Every gate: the ones already passed as recorded when the version passed them, the
        next one judged now, later ones saying they are not reached yet."""
        inputs = self._inputs(version, now)
        order = list(Stage)
        results = []
        for stage, gate in GATES.items():
            passed = order.index(stage) < order.index(version.stage)
            recorded = self._recorded_gate(version, stage) if passed else None
            results.append(recorded or gate(inputs))
        return results

    def _recorded_gate(self, version: VersionState, stage: Stage) -> GateResult | None:
        """The checks recorded with the version's last move out of ``stage``."""
        moves = [
            event
            for event in self.store.events(version.id)
            if event.from_stage == stage.value and event.kind in ("advance", "forced")
        ]
        if not moves or stage.next is None:
            return None
        checks = tuple(Check(**check) for check in moves[-1].checks)
        return GateResult(stage, stage.next, checks)

    def _inputs(self, version: VersionState, now: datetime) -> GateInputs:
        return GateInputs(self.db, version, self.config, self.app.guardrails.enabled, now)

    # -- evidence ---------------------------------------------------------------------------

    def record_backtest(self, version: VersionState, metrics: str | Path, now: datetime) -> None:
        """Read a backtest's metrics.json, check it is of this very file, and record it."""
        evidence = load_backtest_metrics(metrics, version.identity)
        self.store.record_evidence(version.id, BACKTEST, evidence.source, evidence.to_json(), now)

    def record_key_audit(self, version: VersionState, now: datetime) -> str | None:
        """Audit the configured broker's key when the version is at shadow (the gate that reads
        the audit) and the broker is a production account, and record the result (never the
        key). Returns the audit's one line, or ``None`` when there is nothing to audit."""
        broker_cfg = self.app.broker
        if version.stage is not Stage.SHADOW or not is_production_account(broker_cfg):
            return None
        from otonom_trader.broker.ccxt_broker import CcxtBroker
        from otonom_trader.broker.errors import PermissionDeniedError
        from otonom_trader.broker.factory import build_broker
        from otonom_trader.broker.key_audit import audit_api_key

        broker = build_broker(broker_cfg)
        assert isinstance(broker, CcxtBroker)  # not sim: a ccxt exchange
        try:
            result = audit_api_key(broker)
            data = {
                "checked": result.checked,
                "can_withdraw": result.can_withdraw,
                "can_trade": result.can_trade,
                "message": result.message,
            }
        except PermissionDeniedError as refused:  # a key that can withdraw: recorded as such
            data = {
                "checked": True,
                "can_withdraw": True,
                "can_trade": None,
                "message": str(refused),
            }
        finally:
            broker.close()
        self.store.record_evidence(version.id, KEY_AUDIT, broker.name, data, now)
        return str(data["message"])

    # -- moves ------------------------------------------------------------------------------

    def advance(
        self,
        version: VersionState,
        now: datetime,
        *,
        actor: str,
        force: bool = False,
        reason: str | None = None,
    ) -> AdvanceOutcome:
        """Move to the next stage when the gate passes; with ``force`` (and a reason) even when
        it does not. Either way the gate's checks are recorded with the move."""
        target = version.stage.next
        if target is None:
            raise ConfigError(f"{version.identity.describe()} is already live", key="promote")
        if force and not (reason and reason.strip()):
            raise ConfigError(
                "a forced advance needs --reason TEXT (it is recorded)", key="--reason"
            )
        gate = self.judge(version, now)
        assert gate is not None
        if not gate.passed and not force:
            return AdvanceOutcome(gate, moved=False, forced=False, version=version)
        self.store.move(
            version.id,
            to_stage=target,
            kind="advance" if gate.passed else "forced",
            passed=gate.passed,
            reason=reason,
            actor=actor,
            checks=gate.checks_json(),
            now=now,
            expected_stage=version.stage,
        )
        moved = self.store.version(version.identity, now)
        return AdvanceOutcome(gate, moved=True, forced=not gate.passed, version=moved)

    def rollback(
        self, version: VersionState, now: datetime, *, actor: str, reason: str
    ) -> tuple[VersionState, list[str]]:
        """Demote live → shadow and trip the kill-switch of every account the version traded
        LIVE (the configured broker's account when it never ran). Returns the new state and the
        books halted."""
        if version.stage is not Stage.LIVE:
            raise ConfigError(
                f"{version.identity.describe()} is at {version.stage.value}; rollback demotes a "
                "live version to shadow",
                key="promote rollback",
            )
        if not reason.strip():
            raise ConfigError("must not be empty", key="--reason")
        self.store.move(
            version.id,
            to_stage=Stage.SHADOW,
            kind="rollback",
            passed=False,
            reason=reason,
            actor=actor,
            checks=[],
            now=now,
            expected_stage=Stage.LIVE,
        )
        books = self._live_books(version)
        self._trip(
            books, f"promotion rollback of {version.identity.describe()}: {reason}", now, actor
        )
        return self.store.version(version.identity, now), books

    def _live_books(self, version: VersionState) -> list[str]:
        """The broker books of the accounts where this version ran LIVE."""
        identity = version.identity
        with self.db.session() as session:
            accounts = sorted(
                {
                    account
                    for account in session.scalars(
                        select(DaemonRun.account_id).where(
                            DaemonRun.mode == "live",
                            DaemonRun.strategy_name == identity.name,
                            DaemonRun.strategy_version == identity.version,
                        )
                    )
                    if account
                }
            )
        if accounts:
            return accounts
        from otonom_trader.accounts.identity import Account
        from otonom_trader.config.validation import sim_account_path

        sim_endpoint = str(sim_account_path(self.app.db.url).resolve())
        return [Account.for_broker(self.app.broker, sim_endpoint=sim_endpoint).book]

    def _trip(self, books: list[str], reason: str, now: datetime, actor: str) -> None:
        """Trip each book's kill-switch; its alert rows commit with the trip (as the
        ``kill-switch trip`` command does), and are delivered by the next cycle or sender."""
        from otonom_trader.guardrails.kill_switch import KillSwitch

        alerts = None
        if self.app.alerts.enabled:
            from otonom_trader.alerts.engine import AlertEngine

            alerts = AlertEngine(self.app.alerts, db=self.db, mode=str(self.app.mode.name))
        try:
            for book in books:
                switch = KillSwitch(
                    self.db,
                    self.app.guardrails,
                    book,
                    on_transition_tx=alerts.record_transition if alerts is not None else None,
                )
                switch.trip(reason[:500], now, actor)
        finally:
            if alerts is not None:
                alerts.close()
