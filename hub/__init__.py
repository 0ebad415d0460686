"""CommandHub hub: server, signaling, media routing, commands, event log, auth."""
