"""The paper book."""
