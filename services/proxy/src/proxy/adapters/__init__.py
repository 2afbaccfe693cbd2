"""The proxy's adapters. Until the pull-through cache lands it uses the shared Mongo and S3 clients as is."""
