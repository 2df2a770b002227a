"""Jobs: the record, its table, the one submit path, and settling a job exactly once."""
