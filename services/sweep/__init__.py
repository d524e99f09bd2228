"""The sweep: jobs whose worker stopped on their last attempt, and webhooks never queued."""
