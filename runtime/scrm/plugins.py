"""Plugin discovery, isolation, registration; the event hooks are called through
:class:`scrm.hooks.Hooks` (:attr:`PluginHost.hooks`, :meth:`PluginHost.hooks_for`).

Plugins are modules named by entry points in the ``scrm`` group (plus the core's own
built-in plugins, registered the same way). Each is loaded on its own: a plugin that
fails to import, registers a hook that does not exist, or breaks in a registration hook
is reported by name and skipped (``strict=True`` makes that fatal instead).

Environment:

* ``SCRM_LOAD_PLUGINS=a,b`` loads only these entry-point plugins (empty: none of them);
* ``SCRM_DISABLE_PLUGINS=a,b`` skips these (built-ins included, e.g. ``scrm.routing``);
* ``SCRM_ENABLE_PLUGINS=a,b`` loads these *optional* plugins: entry points in the
  ``scrm.optional`` group, which are off unless named (e.g. ``pii`` from scrm-pii).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from types import ModuleType
from typing import Any, cast

import pluggy

from scrm.hooks import Hooks
from scrm_core import PROJECT_NAME, __version__, hookspecs
from scrm_core.adapters import CrmAdapter, NetworkAdapter
from scrm_core.errors import PluginError
from scrm_core.learning import TrainableClassifier
from scrm_core.store.registry import StoreBackend, StoreBackends

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "OPTIONAL_ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginInfo",
]

log = logging.getLogger("scrm.plugins")

ENTRY_POINT_GROUP = "scrm"
OPTIONAL_ENTRY_POINT_GROUP = "scrm.optional"
#: Core features that are ordinary plugins: name -> module.
BUILTIN_PLUGINS: dict[str, str] = {
    "scrm.sqlite": "scrm.sqlite",
    "scrm.routing": "scrm.engine.routing",
    "scrm.identity": "scrm.identity",
}

_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("scrm_"))
#: Registration hooks a processor object (``scrm_register_processors``) may not implement.
_REGISTRATION = hookspecs.SYNC_ONLY


@dataclass
class PluginInfo:
    """What ``scrm plugins`` shows about one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    crms: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class _InvalidPlugin(Exception):
    """A plugin that imports but breaks the contract (unknown hook, async registration hook)."""


def _env_list(env: Mapping[str, str], name: str) -> set[str] | None:
    raw = env.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginHost:
    """Owns the pluggy manager, the adapter registries and what went wrong while loading."""

    def __init__(self, *, strict: bool = False, env: Mapping[str, str] | None = None) -> None:
        self.strict = strict
        self.env = os.environ if env is None else env
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.networks: dict[str, type[NetworkAdapter]] = {}
        self.crms: dict[str, type[CrmAdapter]] = {}
        #: Classifiers that learn from agents' corrections (``scrm_register_classifiers``), by name.
        self.classifiers: dict[str, TrainableClassifier] = {}
        #: State-store back ends (``scrm_register_stores``), by URL scheme: ``open_store(url, base, host.stores)``.
        self.stores = StoreBackends()
        #: The event hooks of every loaded plugin, typed (:class:`scrm.hooks.Hooks`); an
        #: engine calls :meth:`hooks_for` its config instead, which adds the plugins' objects.
        self.hooks = Hooks(self.pm)

    # ------------------------------------------------------------ loading

    def load(self, *, entry_points: bool = True) -> PluginHost:
        """Load built-ins and (unless disabled) every entry point, then run registration hooks."""
        disabled = _env_list(self.env, "SCRM_DISABLE_PLUGINS") or set()
        allowed = _env_list(self.env, "SCRM_LOAD_PLUGINS")
        for name, module in BUILTIN_PLUGINS.items():
            if name not in disabled:
                self._load_one(
                    PluginInfo(name=name, module=module, distribution="scrm-core", version=__version__, builtin=True),
                    partial(importlib.import_module, module),
                )
        if entry_points:
            enabled = _env_list(self.env, "SCRM_ENABLE_PLUGINS") or set()
            found = [(ep, True) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
            found += [(ep, ep.name in enabled) for ep in metadata.entry_points(group=OPTIONAL_ENTRY_POINT_GROUP)]
            for ep, wanted in sorted(found, key=lambda x: x[0].name):
                if not wanted or ep.name in disabled or (allowed is not None and ep.name not in allowed):
                    continue
                info = PluginInfo(name=ep.name, module=ep.value)
                if ep.dist is not None:
                    info.distribution, info.version = ep.dist.name, ep.dist.version
                self._load_one(info, ep.load)
        self._run_registrations()
        self.hooks.refresh()
        return self

    def register(self, plugin: object, name: str, *, builtin: bool = False) -> PluginInfo:
        """Register an already-imported plugin object (tests, embedding applications)."""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        info = self._load_one(PluginInfo(name=name, module=module, builtin=builtin), lambda: plugin)
        self._run_registrations(only=name)
        self.hooks.refresh()
        return info

    def _load_one(self, info: PluginInfo, load: Callable[[], object]) -> PluginInfo:
        self.plugins[info.name] = info
        try:
            plugin = load()
            self._validate(plugin)
            self.pm.register(plugin, name=info.name)
        except _InvalidPlugin as exc:
            self._fail(info, str(exc))
            return info
        except Exception as exc:  # any import failure: report by name, go on
            self._fail(info, f"could not be loaded: {type(exc).__name__}: {exc}")
            return info
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        if info.distribution is None and isinstance(plugin, ModuleType):
            info.version = getattr(plugin, "__version__", None)
        return info

    def _validate(self, plugin: object, *, processor: bool = False) -> None:
        for attr in dir(plugin):
            if not attr.startswith("scrm_"):
                continue
            fn = getattr(plugin, attr)
            if self.pm.parse_hookimpl_opts(plugin, attr) is None:
                continue
            if attr not in _SPEC_NAMES:
                raise _InvalidPlugin(f"implements unknown hook {attr!r} (a typo? see docs/hooks.md)")
            if processor and attr in _REGISTRATION:
                raise _InvalidPlugin(f"{type(plugin).__name__} implements {attr}: only its module may (once)")
            if attr in hookspecs.SYNC_ONLY and inspect.iscoroutinefunction(fn):
                raise _InvalidPlugin(f"{attr} must be a plain function, not async: it runs once at start-up")

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.error = message
        log.error("plugin %s %s", info.name, info.error)
        if self.strict:
            raise PluginError(info.name, info.error)

    def _run_registrations(self, only: str | None = None) -> None:
        """Call the registration hooks one plugin at a time so a failure is attributable."""
        for hook_name, registry, kind in (
            ("scrm_register_networks", self.networks, "networks"),
            ("scrm_register_crms", self.crms, "crms"),
        ):
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.plugins.get(impl.plugin_name)
                if info is None or info.error or (only and impl.plugin_name != only):
                    continue
                try:
                    impl.function(self._registrar(info, registry, kind))
                except Exception as exc:
                    self._fail(info, f"failed in {hook_name}: {type(exc).__name__}: {exc}")
                    self.pm.unregister(name=info.name)
        for impl in self.pm.hook.scrm_register_stores.get_hookimpls():
            info = self.plugins.get(impl.plugin_name)
            if info is None or info.error or (only and impl.plugin_name != only):
                continue
            try:
                impl.function(partial(self._register_store, info))
            except Exception as exc:
                self._fail(info, f"failed in scrm_register_stores: {type(exc).__name__}: {exc}")
        for impl in self.pm.hook.scrm_register_classifiers.get_hookimpls():
            info = self.plugins.get(impl.plugin_name)
            if info is None or info.error or (only and impl.plugin_name != only):
                continue
            try:
                impl.function(partial(self._register_classifier, info))
            except Exception as exc:
                self._fail(info, f"failed in scrm_register_classifiers: {type(exc).__name__}: {exc}")

    def _register_store(self, info: PluginInfo, backend: StoreBackend) -> None:
        self.stores.register(backend)
        info.stores += [f"{scheme}://" for scheme in backend.schemes]

    def _register_classifier(self, info: PluginInfo, classifier: TrainableClassifier) -> None:
        if not isinstance(classifier, TrainableClassifier):
            raise TypeError(f"{classifier!r} is not a TrainableClassifier")
        name = getattr(classifier, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{type(classifier).__name__} has no 'name'")
        known = self.classifiers.get(name)
        if known is not None and known is not classifier:
            raise ValueError(f"classifier name {name!r} is already taken by {type(known).__module__}")
        # A classifier may answer event hooks itself (``scrm_classify_message`` with the model
        # it holds): registered as this host's, so no plugin keeps it in a module global.
        hooks = [a for a in dir(classifier) if a.startswith("scrm_") and self.pm.parse_hookimpl_opts(classifier, a)]
        if hooks and known is None and not self.pm.is_registered(classifier):  # (a plugin may be its own classifier)
            self._validate(classifier, processor=True)
            self.pm.register(classifier, name=f"{info.name}/{name}")
            info.hooks = sorted({*info.hooks, *hooks})
        self.classifiers[name] = classifier

    @staticmethod
    def _registrar(info: PluginInfo, registry: dict[str, Any], kind: str) -> Callable[[type[Any]], None]:
        base = NetworkAdapter if kind == "networks" else CrmAdapter

        def register(cls: type[Any]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{cls.__name__} has no 'name'")
            if name in registry and registry[name] is not cls:
                raise ValueError(f"adapter name {name!r} is already taken by {registry[name].__module__}")
            registry[name] = cls
            getattr(info, kind).append(name)

        return register

    def register_commands(self, cli: Any) -> None:
        for impl in self.pm.hook.scrm_register_commands.get_hookimpls():
            try:
                impl.function(cli)
            except Exception as exc:
                info = self.plugins.get(impl.plugin_name)
                if info is not None:
                    self._fail(info, f"failed in scrm_register_commands: {type(exc).__name__}: {exc}")

    def hooks_for(self, config: Any) -> Hooks:
        """The event hooks for one configuration: every loaded plugin's, and the objects each
        builds from ``config`` with ``scrm_register_processors`` (built now, once; their
        hooks run for this configuration only). A plugin that fails to build its objects is
        reported by name and goes without them (``strict``: an error)."""
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        for name, plugin in self.pm.list_name_plugin():
            pm.register(plugin, name=name)
        for impl in reversed(self.pm.hook.scrm_register_processors.get_hookimpls()):  # registration order
            info = self.plugins.get(impl.plugin_name)
            built: list[object] = []
            try:
                impl.function(config, built.append)
                for n, processor in enumerate(built):
                    self._validate(processor, processor=True)
                    pm.register(processor, name=f"{impl.plugin_name}/{type(processor).__name__}#{n}")
            except Exception as exc:
                message = f"failed in scrm_register_processors: {type(exc).__name__}: {exc}"
                if info is not None:
                    self._fail(info, message)
                else:
                    log.error("plugin %s %s", impl.plugin_name, message)
        return Hooks(pm)

    def config_problems(self, config: Any) -> list[str]:
        """Every plugin's ``scrm_check_config`` problems; a plugin that fails to check is one too."""
        problems: list[str] = []
        for impl in reversed(self.pm.hook.scrm_check_config.get_hookimpls()):  # registration order
            try:
                found = cast("list[str] | None", impl.function(config))
            except Exception as exc:
                problems.append(f"(plugin {impl.plugin_name}) could not check the config: {type(exc).__name__}: {exc}")
                continue
            problems += [str(p) for p in found or []]
        return problems

    @property
    def load_errors(self) -> dict[str, str]:
        return {name: info.error for name, info in self.plugins.items() if info.error}
