"""The ``leptonic`` command line: parse arguments, call one service, render."""
