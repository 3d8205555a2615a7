"""A learner's course to its end: what completing a cohort takes (the course's rule, a
cohort's override), how far each participant is, and what is missing."""
