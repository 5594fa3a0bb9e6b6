"""The HTTP API: app factory, shared dependencies, one router per resource."""
