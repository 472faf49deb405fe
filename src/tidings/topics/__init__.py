"""Topics: named groups of subscribers that a trigger can address at once."""
