"""upload-api's adapters: the multipart form, S3 streaming, MongoDB reservations and access, AMQP."""
