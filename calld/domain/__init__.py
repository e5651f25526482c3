"""The domain: call model, event vocabulary, status rules. Imports no I/O library."""
