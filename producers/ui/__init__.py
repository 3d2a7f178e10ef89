"""The API's pages for people: `/ui` (runs, a run, compare, consumer groups) and `/docs`,
both served with everything they load, so they work offline."""

from producers.ui.docs import install_docs
from producers.ui.pages import router

__all__ = ["install_docs", "router"]
