"""Media: sources, camera ingest, stream health, the video wall and recording."""
