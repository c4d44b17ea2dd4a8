"""Operator commands that users run: render, PR comment, history, rollback."""
