"""ZoomInfo: the connector (`connector`), its JWT tokens (`auth`) and the count readings
(`counts`) that steer partitioning."""
