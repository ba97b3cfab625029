"""Portfolio accounting shared by every book."""
