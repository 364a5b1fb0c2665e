"""scrm, the runtime operators install: the ``scrm`` command, the engine, the webhook receiver,
the plugin host and the embedded SQLite state store. Adapters, plugins and back ends are
written against :mod:`scrm_core` (the contract and the adapter kit)."""
