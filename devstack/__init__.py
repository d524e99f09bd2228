"""The native laptop stack (``make run``) and its test harness: the AWS emulator with IAM
enforced, the Lambda Runtime Interface Emulator, the process runner. Never in an image."""
