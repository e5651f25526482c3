"""Test doubles that speak real protocols on loopback (fake FreeSWITCH Event Socket...)."""
