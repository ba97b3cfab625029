"""Kill-switch guardrails."""
