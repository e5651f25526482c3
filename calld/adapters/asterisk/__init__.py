"""Asterisk adapter: AMI wire codec and the AMI-event → ``SwitchEvent`` mapping."""
