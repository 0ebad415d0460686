"""The request handlers the message table points to, one module per area."""
