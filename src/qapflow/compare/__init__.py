"""Cost comparison across the checkpoints of a pruning run: BOPs against synthesized resources."""
