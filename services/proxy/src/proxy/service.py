"""Use cases of the proxy. Empty until the pull-through cache (SPEC §6) is built; kept so the skeleton
matches every other service."""
