"""The REST API for agents under /api/v1/ (SPEC §6): thin views over the issue services."""
