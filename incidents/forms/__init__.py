"""Forms: the input checks of the web pages, one module per page family."""
