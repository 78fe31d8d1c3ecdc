"""EdgeScribe: the CLI, the settings shared by every part, and the local stack."""

__version__ = "0.1.0"
