"""The media plane (an SFU): peer connections, forwarding, routes, feed taps, ICE, link stats."""
