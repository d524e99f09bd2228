"""The notifier: each ended job's webhook, delivered from the callbacks queue."""
