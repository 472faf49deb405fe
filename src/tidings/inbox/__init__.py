"""In-app inbox: messages, feed queries, counts, state changes and the realtime hub."""
