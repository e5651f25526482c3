"""FreeSWITCH adapter: Event Socket (ESL) codec, event mapping and (later) the connection."""
