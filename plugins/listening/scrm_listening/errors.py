"""The one error a query can raise, pointing at the column where it went wrong."""

from __future__ import annotations


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed, or that would match almost everything.

    ``str(error)`` is ``"<message> at column <n>"`` followed by the query and a caret under
    the column, ready to print under a config key. ``column`` is 1-based.
    """

    def __init__(self, message: str, column: int, query: str = "") -> None:
        self.message = message
        self.column = column
        self.query = query
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.message} at column {self.column}"
        if not self.query:
            return head
        return f"{head}\n  {self.query}\n  {' ' * (self.column - 1)}^"

    def with_query(self, query: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.message, self.column, query)
