"""Tables of the web app: accounts and their sessions. They live with the RMA models
(:mod:`lab.rma.web_schema`: one Alembic history covers the whole database, and the RMA layer
must not import the web app above it); importable from here as before."""

from lab.rma.web_schema import WebSession, WebUser

__all__ = ["WebSession", "WebUser"]
