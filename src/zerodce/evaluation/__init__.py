"""Evaluation: metrics, the methods compared and the evaluate command."""
