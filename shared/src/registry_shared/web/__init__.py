"""aiohttp pieces every HTTP service uses: middlewares, health/readiness/metrics routes, Basic auth parsing."""
