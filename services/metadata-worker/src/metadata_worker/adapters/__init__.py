"""The worker's own adapters: blocking readers over S3 objects, inspection in threads, AMQP retries."""
