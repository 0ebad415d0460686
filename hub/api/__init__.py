"""The hub's API surface: one table of message types and one of REST routes, each with its
permission and schema; the request pipeline; the one rule for who sees which event."""
