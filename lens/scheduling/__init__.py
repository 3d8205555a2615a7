"""Scheduling: forming cohort groups from weekly availability."""
