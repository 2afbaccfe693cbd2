"""upload-api: accepts twine/uv uploads, streams them to S3, and answers with the worker's verdict."""
