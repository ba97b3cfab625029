"""A fleet: several named bots (strategy × account × mode) sharing one database and one Prefect
server. ``BotConfig`` names the bot a cycle runs as; the fleet file (``conf/fleet/``) lists bots."""
