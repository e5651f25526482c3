"""Several calld instances on one PostgreSQL database: a leader per PBX, one live feed, control
actions carried to the instance connected to the call's switch."""
