"""Alerts through Apprise."""
