"""The deployed functions other than inference: the jobs API, the status API, the sweep and the
notifier, with the HTTP plumbing the two APIs share."""
