"""Toolkit for computer-use agents."""
