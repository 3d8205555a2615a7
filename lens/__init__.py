"""Lens: cohort-based online courses with an AI tutor beside every section."""

__version__ = "0.1.0"
