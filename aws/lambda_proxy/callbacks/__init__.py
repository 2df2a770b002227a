"""Callbacks from the GPU side: Standard Webhooks verification and applying events to jobs."""
