"""The local Data Bank server: `create_app(settings)` serves the protocol of
`docs/databank-protocol.md` from a directory; `trainledger databank` runs it with uvicorn."""

from databank.server.app import create_app
from databank.server.settings import DataBankServerSettings

__all__ = ["DataBankServerSettings", "create_app"]
