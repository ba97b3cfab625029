"""Promotion: each strategy version moves research → paper → shadow → live through gates.

``stages`` (the stages and a version's identity), ``config`` (the gates' limits, the
``promotion`` config group), ``evidence`` (a backtest's metrics.json), ``store`` (the tables),
``gates`` (the checks), ``workflow`` (check, advance, rollback), ``live_gate`` (what LIVE on a
production account asks: a promoted version, a capped first period) and ``cli``
(``otonom-trader promote``). See docs/promotion_workflow.md.
"""
