"""A stateful fake of the X API v2 for tests (``pip install scrm-x[testing]``).

::

    from scrm_core.testing import FakeServer
    from scrm_x.testing import FakeX

    fake = FakeX()
    with FakeServer(fake.app) as server:  # stopped when the block ends
        ...  # point XSettings(base_url=server.url, ...) at it
"""

from .fake import FakeX
from .query import Query, QueryError

__all__ = ["FakeX", "Query", "QueryError"]
