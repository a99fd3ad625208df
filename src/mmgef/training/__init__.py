"""Training: negative sampling and the resumable BPR trainer."""
