"""Scoring: rubrics, scores computed from the event log, and PDF scorecards."""
