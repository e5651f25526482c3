"""The ``calld`` command: running the daemon, migrations, API tokens and test data."""
