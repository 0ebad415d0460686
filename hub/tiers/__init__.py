"""Tiered hubs (1+7+N): a town hub as a unit of the city hub, linked by one WebSocket."""
