"""The use cases behind every transport: calls, their control through the switch, provider deliveries, views."""
