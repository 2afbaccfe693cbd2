"""registry-admin: the administration command line (SPEC §8)."""
