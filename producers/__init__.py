"""The write API: commands become events; reads go through `projections` queries."""

from producers.app import create_app
from producers.commands import CancelAccepted, Commands, RunAccepted, TokenizerAccepted
from producers.config import ApiConfig, SpecLimits
from producers.errors import ApiError

__all__ = [
    "ApiConfig",
    "ApiError",
    "CancelAccepted",
    "Commands",
    "RunAccepted",
    "SpecLimits",
    "TokenizerAccepted",
    "create_app",
]
