"""gitdag: a git-native orchestrator for coding agents."""

__version__ = "0.1.0"
