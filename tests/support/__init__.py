"""Helpers shared by the test folders (not fixtures: plain functions)."""
