"""The subscriber-facing inbox: sessions, feed, counts, state changes, own preferences and the live stream."""
