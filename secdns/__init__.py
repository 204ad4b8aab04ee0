"""secdns: keep secondary copies of DNS zones in sync with their primaries, and check them."""

__version__ = "0.1.0"
