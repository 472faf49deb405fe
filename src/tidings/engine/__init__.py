"""The workflow engine: runs one job (one step of one notification) at a time, and says what comes next."""
