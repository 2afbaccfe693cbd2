"""I/O adapters: MongoDB, S3, RabbitMQ. Created in cleanup contexts or a worker's main, never at import."""
