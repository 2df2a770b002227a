"""Lambda entry points of the batch state machine."""
