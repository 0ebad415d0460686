"""After-action replay: an operation's timeline, recordings and log, read back from a data folder."""
