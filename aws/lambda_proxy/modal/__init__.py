"""The client for the Modal internal API (``/v1/jobs``), authenticated with a proxy token."""
