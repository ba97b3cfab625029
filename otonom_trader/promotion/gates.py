"""The three gates, each a list of checks with the numbers they judged.

::

    research → paper   a backtest's metrics.json of this very file: span, trades, max drawdown,
                       out-of-sample profit factor
    paper → shadow     PAPER runs of this version since it entered paper: days spanned, runs,
                       no failed or abandoned run
    shadow → live      SHADOW runs on a testnet account since it entered shadow: days spanned,
                       and from that account's shadow ledger (``otonom_trader.shadow.report``):
                       pairs, broker fill rate, mean and worst slippage, paper-vs-broker PnL
                       divergence; a test alert delivered; the production key audited without
                       withdrawal rights; guardrails not ``off``

A check with no evidence fails and says what is missing; a gate passes only when every check
does. Nothing here writes: the workflow records what it judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from otonom_trader.persistence.account_models import AccountRecord
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import DaemonRun
from otonom_trader.promotion.config import PromotionConfig
from otonom_trader.promotion.evidence import BacktestEvidence
from otonom_trader.promotion.stages import Stage
from otonom_trader.promotion.store import PromotionStore, VersionState

FAILED_RUN_STATUSES = ("failed", "abandoned")
KEY_AUDIT = "key_audit"
BACKTEST = "backtest"


@dataclass(frozen=True)
class Check:
    """One condition of a gate: what was measured, what is required, and whether it holds."""

    name: str
    value: str
    required: str
    passed: bool

    def line(self) -> str:
        """``paper days: 2.0 (required ≥ 3)``."""
        return f"{self.name}: {self.value} (required {self.required})"


@dataclass(frozen=True)
class GateResult:
    """A gate judged now: every check, in order."""

    from_stage: Stage
    to_stage: Stage
    checks: tuple[Check, ...]

    @property
    def name(self) -> str:
        return f"{self.from_stage.value} → {self.to_stage.value}"

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def checks_json(self) -> list[dict[str, Any]]:
        """The checks as stored with a promotion event and printed by ``--json``."""
        return [asdict(check) for check in self.checks]


@dataclass(frozen=True)
class GateInputs:
    """What every gate may read: the database, the version, the limits and the clock."""

    db: Database
    version: VersionState
    config: PromotionConfig
    guardrails_enabled: bool
    now: datetime


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86_400


def _fmt(value: float | Decimal | None, places: int = 2) -> str:
    return "—" if value is None else f"{float(value):.{places}f}"


# -- research → paper ---------------------------------------------------------------------------


def research_gate(inputs: GateInputs) -> GateResult:
    """A backtest of this file: long enough, enough trades, drawdown within the limit, and an
    out-of-sample profit factor at or above the minimum."""
    limits = inputs.config.research
    recorded = PromotionStore(inputs.db).latest_evidence(inputs.version.id, BACKTEST)
    if recorded is None:
        checks: tuple[Check, ...] = (
            Check(
                "backtest evidence",
                "none recorded",
                "--evidence metrics.json",
                False,
            ),
        )
        return GateResult(Stage.RESEARCH, Stage.PAPER, checks)
    evidence = BacktestEvidence.from_json(recorded.source, recorded.data)
    oos = evidence.oos_profit_factor
    checks = (
        Check(
            "backtest span (days)",
            _fmt(evidence.span_days, 1),
            f"≥ {limits.min_span_days:g}",
            evidence.span_days >= limits.min_span_days,
        ),
        Check(
            "backtest trades",
            str(evidence.trades),
            f"≥ {limits.min_trades}",
            evidence.trades >= limits.min_trades,
        ),
        Check(
            "max drawdown",
            f"{evidence.max_drawdown * 100:.2f}%",
            f"≤ {limits.max_drawdown * 100:g}%",
            evidence.max_drawdown <= limits.max_drawdown,
        ),
        Check(
            "out-of-sample profit factor",
            "none (no walk-forward split)" if oos is None else _fmt(oos),
            f"≥ {limits.min_oos_profit_factor:g}",
            oos is not None and oos >= limits.min_oos_profit_factor,
        ),
    )
    return GateResult(Stage.RESEARCH, Stage.PAPER, checks)


# -- paper → shadow -----------------------------------------------------------------------------


def _runs(inputs: GateInputs, mode: str) -> list[DaemonRun]:
    """This version's runs in ``mode`` since it entered its current stage, oldest first.

    Runs record the strategy's name and version (not the file's hash); runs from before the
    version entered the stage are not counted, so an earlier file of the same name and version
    does not lend its history to this one."""
    identity = inputs.version.identity
    with inputs.db.session() as session:
        rows = list(
            session.scalars(
                select(DaemonRun)
                .where(
                    DaemonRun.mode == mode,
                    DaemonRun.strategy_name == identity.name,
                    DaemonRun.strategy_version == identity.version,
                    DaemonRun.started_at >= inputs.version.stage_since,
                    DaemonRun.started_at <= inputs.now,
                )
                .order_by(DaemonRun.started_at, DaemonRun.id)
            )
        )
        session.expunge_all()
        return rows


def _span_days(runs: list[DaemonRun]) -> float:
    if not runs:
        return 0.0
    return _days(runs[-1].started_at - runs[0].started_at)


def paper_gate(inputs: GateInputs) -> GateResult:
    """PAPER cycles of this version spanning enough days, none failed."""
    limits = inputs.config.paper
    if inputs.version.stage is not Stage.PAPER:
        return _not_reached(Stage.PAPER, Stage.SHADOW, "PAPER runs since entering paper")
    runs = _runs(inputs, "paper")
    succeeded = [run for run in runs if run.status == "succeeded"]
    failed = [run for run in runs if run.status in FAILED_RUN_STATUSES]
    days = _span_days(succeeded)
    checks = (
        Check(
            "paper days (first to last run)",
            _fmt(days, 2),
            f"≥ {limits.min_days:g}",
            bool(succeeded) and days >= limits.min_days,
        ),
        Check(
            "paper runs succeeded",
            str(len(succeeded)),
            f"≥ {limits.min_runs}",
            len(succeeded) >= limits.min_runs,
        ),
        Check("paper runs failed or abandoned", str(len(failed)), "= 0", not failed),
    )
    return GateResult(Stage.PAPER, Stage.SHADOW, checks)


def _not_reached(from_stage: Stage, to_stage: Stage, what: str) -> GateResult:
    """A gate whose window has not begun: the version has not entered ``from_stage`` yet."""
    check = Check(what, f"not in {from_stage.value} yet", f"stage {from_stage.value}", False)
    return GateResult(from_stage, to_stage, (check,))


# -- shadow → live ------------------------------------------------------------------------------


def _testnet_account(inputs: GateInputs, runs: list[DaemonRun]) -> str | None:
    """The testnet account this version shadowed most (by succeeded runs)."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.status == "succeeded" and run.account_id:
            counts[run.account_id] = counts.get(run.account_id, 0) + 1
    if not counts:
        return None
    with inputs.db.session() as session:
        testnets = set(
            session.scalars(
                select(AccountRecord.account_id).where(
                    AccountRecord.account_id.in_(list(counts)),
                    AccountRecord.environment == "testnet",
                )
            )
        )
    ranked = sorted(testnets, key=lambda account: (-counts[account], account))
    return ranked[0] if ranked else None


def shadow_gate(inputs: GateInputs) -> GateResult:
    """SHADOW on a testnet account for long enough, measured on its shadow ledger, plus the
    operational checks (alert test, key audit, guardrails)."""
    if inputs.version.stage is not Stage.SHADOW:
        return _not_reached(Stage.SHADOW, Stage.LIVE, "SHADOW runs since entering shadow")
    limits = inputs.config.shadow
    runs = _runs(inputs, "shadow")
    account = _testnet_account(inputs, runs)
    checks: list[Check] = []
    if account is None:
        elsewhere = sorted({run.account_id or "?" for run in runs})
        checks.append(
            Check(
                "SHADOW on a testnet account",
                f"none (runs on: {', '.join(elsewhere)})" if elsewhere else "no SHADOW run",
                "a testnet account",
                False,
            )
        )
    else:
        on_account = [r for r in runs if r.account_id == account and r.status == "succeeded"]
        days = _span_days(on_account)
        checks.append(
            Check(
                f"shadow days on {account}",
                _fmt(days, 2),
                f"≥ {limits.min_days:g}",
                days >= limits.min_days,
            )
        )
        checks.extend(_ledger_checks(inputs, account))
    checks.append(_alert_test_check(inputs))
    checks.append(_key_audit_check(inputs))
    checks.append(
        Check(
            "guardrails",
            "on" if inputs.guardrails_enabled else "off",
            "not off",
            inputs.guardrails_enabled,
        )
    )
    return GateResult(Stage.SHADOW, Stage.LIVE, tuple(checks))


def _ledger_checks(inputs: GateInputs, account: str) -> list[Check]:
    """The shadow report's numbers (``build_report``) over the stage's window on ``account``."""
    from otonom_trader.accounts.identity import shadow_paper_book
    from otonom_trader.shadow.report import ShadowBooks, build_report

    limits = inputs.config.shadow
    report = build_report(
        inputs.db,
        since=inputs.version.stage_since,
        until=inputs.now,
        books=ShadowBooks(shadow_paper_book(account), account),
    )
    broker = report.broker
    divergence = _divergence_pct(report.pnl_difference, report.paper.equity_start)
    worst, mean = broker.worst_slippage_bps, broker.mean_slippage_bps
    return [
        Check(
            "shadow pairs",
            str(report.pair_count),
            f"≥ {limits.min_pairs}",
            report.pair_count >= limits.min_pairs,
        ),
        Check(
            "broker fill rate",
            "—" if broker.fill_rate is None else f"{float(broker.fill_rate) * 100:.1f}%",
            f"≥ {limits.min_fill_rate * 100:g}%",
            broker.fill_rate is not None and float(broker.fill_rate) >= limits.min_fill_rate,
        ),
        Check(
            "mean slippage (bps)",
            _fmt(mean),
            f"≤ {limits.max_mean_slippage_bps:g}",
            mean is not None and float(mean) <= limits.max_mean_slippage_bps,
        ),
        Check(
            "worst slippage (bps)",
            _fmt(worst),
            f"≤ {limits.max_worst_slippage_bps:g}",
            worst is not None and float(worst) <= limits.max_worst_slippage_bps,
        ),
        Check(
            "PnL divergence broker vs paper",
            "— (needs two snapshots per book)" if divergence is None else f"{divergence:.3f}%",
            f"≤ {limits.max_pnl_divergence_pct:g}%",
            divergence is not None and divergence <= limits.max_pnl_divergence_pct,
        ),
    ]


def _divergence_pct(pnl_difference: Decimal | None, opening: Decimal | None) -> float | None:
    """|broker PnL − paper PnL| as a percentage of the paper book's opening equity."""
    if pnl_difference is None or opening is None or opening <= 0:
        return None
    return float(abs(pnl_difference) / opening * 100)


def _alert_test_check(inputs: GateInputs) -> Check:
    """A test alert (``otonom-trader alerts test``) some channel accepted, recently enough."""
    within = inputs.config.shadow.alert_test_within_days
    since = inputs.now - timedelta(days=within)
    with inputs.db.session() as session:
        last = session.scalar(
            select(func.max(AlertOutboxRecord.sent_at)).where(
                AlertOutboxRecord.event == "test",
                AlertOutboxRecord.status == "sent",
            )
        )
    fresh = last is not None and since <= last <= inputs.now
    value = "none delivered" if last is None else f"delivered {last:%Y-%m-%d %H:%M} UTC"
    return Check("alert test delivered", value, f"within {within:g} days", fresh)


def _key_audit_check(inputs: GateInputs) -> Check:
    """The production key's audit, as recorded by ``promote check|advance`` with the live
    broker configured: checked by the exchange, and without withdrawal rights."""
    recorded = PromotionStore(inputs.db).latest_evidence(inputs.version.id, KEY_AUDIT)
    required = "checked, no withdrawal"
    if recorded is None:
        value = "not recorded (run promote check with the production broker configured)"
        return Check("API-key audit", value, required, False)
    data = recorded.data
    if not data.get("checked"):
        return Check("API-key audit", "skipped: withdrawal rights not verified", required, False)
    if data.get("can_withdraw"):
        return Check("API-key audit", "the key CAN WITHDRAW", required, False)
    return Check(
        "API-key audit", f"no withdrawal ({recorded.recorded_at:%Y-%m-%d})", required, True
    )


#: The gate that leads out of each stage.
GATES: dict[Stage, Callable[[GateInputs], GateResult]] = {
    Stage.RESEARCH: research_gate,
    Stage.PAPER: paper_gate,
    Stage.SHADOW: shadow_gate,
}
