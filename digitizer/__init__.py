"""sohoa: digitize once, sign once, reuse everywhere."""

__version__ = "0.1.0"
