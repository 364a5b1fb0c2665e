"""``python -m scrm_core`` is the ``scrm`` command."""

from .cli import main

main()
