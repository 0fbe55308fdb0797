"""Preference pairs and what they are built from: augmented prompts, policy candidates, judge scores."""
