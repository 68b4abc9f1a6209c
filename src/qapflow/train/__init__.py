"""Training: the trainer, pruning masks and schedules (FT, LT), BN folding, QAP runs."""
