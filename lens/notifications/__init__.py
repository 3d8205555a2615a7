"""Notifications: typed kinds, their e-mail and Discord renderings, delivery rows."""
