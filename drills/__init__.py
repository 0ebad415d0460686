"""Drills: scenarios, the drill runner and simulated departments."""
