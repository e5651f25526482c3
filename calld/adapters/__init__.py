"""Switch adapters: Asterisk (AMI) and FreeSWITCH (Event Socket) behind one port."""
