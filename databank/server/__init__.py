"""The local Data Bank server: `create_app(settings)` serves the protocol of
`docs/databank-protocol.md` from a directory; `trainledger databank` runs it with uvicorn."""

from databank.server.app import create_app
from databank.server.serving import ServingLimits, server_config
from databank.server.settings import DataBankServerSettings

__all__ = ["DataBankServerSettings", "ServingLimits", "create_app", "server_config"]
