"""Cohorts: a course run people enroll in, with availability, groups and members."""
