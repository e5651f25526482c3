"""calld: call-logging and call-control daemon for Asterisk and FreeSWITCH."""

__version__ = "0.1.0"
