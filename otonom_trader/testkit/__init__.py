"""Test doubles that speak the real wire protocols, shared by the test suite and drills.

* :mod:`otonom_trader.testkit.telegram_bot_api`: a local stand-in of the Telegram Bot API.
* :mod:`otonom_trader.testkit.clock`: ``ManualClock``, the one injectable clock.
* :mod:`otonom_trader.testkit.smtp`: real local SMTP servers (one that hangs, too).
"""
