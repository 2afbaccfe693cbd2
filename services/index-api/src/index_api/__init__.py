"""index-api: pip's read path (SPEC §3 E1-E3m, E7-E9m; §5)."""
