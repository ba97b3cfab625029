"""Market data: candles, market rules."""
