"""Views: thin interfaces that check the role, validate input, call one service or selector and render."""
