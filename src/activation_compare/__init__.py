"""activation-compare."""
__version__ = "0.1.0"
