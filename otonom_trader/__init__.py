"""otonom_trader."""
