"""Background work on Taskiq: the broker, task definitions and the scheduler of due jobs."""
