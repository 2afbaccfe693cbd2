"""proxy: the cluster-internal pull-through cache of the upstream index (SPEC §6).

index-api asks it for the pages of names a scope does not have (with forwarding on) and for the files those
pages list; it fetches from PROXY_UPSTREAM_URL, caches pages in MongoDB and files in S3, and renders every
file URL into the requesting scope.
"""
