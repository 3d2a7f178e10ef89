"""`python -m trainledger` is the `trainledger` command."""

from trainledger.cli import app

app()
