"""Reads: every query the interfaces need, one module per concern."""
