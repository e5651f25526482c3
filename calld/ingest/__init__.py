"""Switch events into storage: batching, de-duplication and the spill file that keeps them across a database outage."""
