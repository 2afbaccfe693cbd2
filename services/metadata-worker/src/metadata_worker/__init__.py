"""metadata-worker: consumes `distribution.stored`, inspects each archive, indexes or rejects it."""
