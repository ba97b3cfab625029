"""Order execution: the journal and the per-book execution of intents."""
