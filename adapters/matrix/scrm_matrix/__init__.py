"""scrm's Matrix network adapter: a homeserver's rooms over the client-server API, with httpx."""

from .adapter import MatrixAdapter, txn_id_for
from .settings import MatrixSettings

__all__ = ["MatrixAdapter", "MatrixSettings", "txn_id_for"]
