"""A client of the divescore HTTP API v1: create a job, upload its video straight to S3,
follow it to its score. ``divescore submit`` and ``divescore status`` are built on it."""
