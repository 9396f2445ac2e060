"""Offline job verbs: render, validate, fmt."""
