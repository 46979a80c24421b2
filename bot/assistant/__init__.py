"""What the bot says by itself: the FAQ responder and its texts in each language."""
