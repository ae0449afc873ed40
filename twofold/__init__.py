"""Twofold: self-hosted two-factor sign-in for medical practices."""

__version__ = "0.1.0"
