"""Governance (SPEC §10): yank, protection rules, audit records, webhooks, download counts, cleanup.

Use cases here take ports, so the API (index-api) and the web interface call the same code."""
