"""Small helpers shared by every stage (atomic writes, errors, hashing)."""
