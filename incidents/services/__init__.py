"""Writes: every change to the portal's data goes through a function here, one module per concern."""
