"""Version of the sectigo-iot package."""

__version__ = "0.1.0"
