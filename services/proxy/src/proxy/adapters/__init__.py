"""The proxy's adapters: MongoDB (`proxy_pages`, `proxy_dists`), S3 (`proxy/<sha256>/<filename>`) and the
upstream index over HTTP."""
