"""What an operator looks at and steers: status, trades, orders, profit and equity views
(:mod:`.views`, rendered by :mod:`.render`), log files (:mod:`.logfiles`) and the Telegram
command bot (:mod:`.telegram_commands`)."""
