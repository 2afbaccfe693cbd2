"""index-api's adapters over the shared Mongo and S3 clients (`registry_shared.adapters`)."""
