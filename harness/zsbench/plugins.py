"""Plugin discovery: build a pluggy PluginManager and collect specs into registries.

There is no module-level manager: ``load_registry()`` builds a fresh one every time, so
tests and embedding applications never fight over global state.

Discovery order (as in pytest/tox):
1. hookspecs are added;
2. plugins passed explicitly (``extra``) are registered;
3. blocked names (``-p no:NAME`` and ``ZSBENCH_DISABLED_PLUGINS``) are set;
4. entry points of the ``zsbench`` group are loaded unless autoload is off
   (``--no-autoload`` or ``ZSBENCH_DISABLE_PLUGIN_AUTOLOAD=1``), in which case only the
   names requested with ``-p NAME`` are loaded;
5. ``check_pending()`` rejects hook implementations without a spec.

A plugin that fails to import, or whose hook raises, is recorded as broken with the
exception; every other plugin keeps working.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .api import ZsbenchError
from .registry import Registry
from .specs import (DatasetSpec, MethodSpec, ProtocolSpec, SkeletonEncoderSpec, Spec,
                    TextEncoderSpec, TextSourceSpec)

ENTRY_POINT_GROUP = "zsbench"
ENV_DISABLED = "ZSBENCH_DISABLED_PLUGINS"
ENV_NO_AUTOLOAD = "ZSBENCH_DISABLE_PLUGIN_AUTOLOAD"

#: registration hook name -> (registry key, spec class)
REGISTRATION_HOOKS: dict[str, tuple[str, type[Spec]]] = {
    "zsbench_datasets": ("datasets", DatasetSpec),
    "zsbench_protocols": ("protocols", ProtocolSpec),
    "zsbench_skeleton_encoders": ("encoders", SkeletonEncoderSpec),
    "zsbench_text_sources": ("text_sources", TextSourceSpec),
    "zsbench_text_encoders": ("text_encoders", TextEncoderSpec),
    "zsbench_methods": ("methods", MethodSpec),
}


@dataclass
class PluginInfo:
    name: str
    distribution: str = ""
    version: str = ""
    module: str = ""
    status: str = "ok"          # ok | broken | blocked
    error: str = ""
    components: list[str] = field(default_factory=list)


@dataclass
class PluginSet:
    """A plugin manager plus everything it declared."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    registries: dict[str, Registry]

    def __getattr__(self, item: str) -> Registry:
        regs = self.__dict__.get("registries", {})
        if item in regs:
            return regs[item]
        raise AttributeError(item)

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "broken"]


def _env_list(var: str) -> list[str]:
    return [x.strip() for x in os.environ.get(var, "").split(",") if x.strip()]


def _short_error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def get_plugin_manager(*, blocked: Iterable[str] = (), autoload: bool | None = None,
                       requested: Iterable[str] = (), extra: Iterable[tuple[str, Any]] = (),
                       ) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Build a PluginManager and load plugins. Returns the manager and per-plugin info."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for name, obj in extra:
        pm.register(obj, name=name)
        infos[name] = PluginInfo(name=name, distribution="(registered in-process)",
                                 module=getattr(obj, "__name__", repr(obj)))
    blocked_set = set(blocked) | set(_env_list(ENV_DISABLED))
    for name in blocked_set:
        pm.set_blocked(name)
    if autoload is None:
        autoload = os.environ.get(ENV_NO_AUTOLOAD, "") in ("", "0", "false")
    requested_set = set(requested)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(name=ep.name, module=ep.value,
                          distribution=dist.metadata["Name"] if dist else "",
                          version=dist.version if dist else "")
        if ep.name in infos and infos[ep.name].status != "blocked":
            prev = infos[ep.name]
            raise ZsbenchError(
                f"two plugins are named {ep.name!r}: {prev.module} (distribution "
                f"{prev.distribution}) and {ep.value} (distribution {info.distribution})")
        if ep.name in blocked_set:
            info.status = "blocked"
            infos[ep.name] = info
            continue
        if not autoload and ep.name not in requested_set:
            continue
        infos[ep.name] = info
        try:
            obj = ep.load()
            pm.register(obj, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.status, info.error = "broken", _short_error(exc)
    missing = requested_set - set(infos)
    if missing:
        raise ZsbenchError(f"requested plugin(s) {sorted(missing)} not found in the "
                           f"'{ENTRY_POINT_GROUP}' entry-point group")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ZsbenchError(f"plugin validation failed: {exc}") from exc
    return pm, infos


def collect(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> dict[str, Registry]:
    """Call every registration hook plugin by plugin and fill typed registries."""
    registries: dict[str, Registry[Any]] = {key: Registry(key) for key, _ in REGISTRATION_HOOKS.values()}
    for hook_name, (key, spec_cls) in REGISTRATION_HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            info = infos.setdefault(impl.plugin_name, PluginInfo(name=impl.plugin_name))
            if info.status == "broken":
                continue
            try:
                specs = impl.function() or []
                for spec in specs:
                    if not isinstance(spec, spec_cls):
                        raise TypeError(f"{hook_name} returned {type(spec).__name__}, "
                                        f"expected {spec_cls.__name__}")
            except Exception as exc:
                info.status, info.error = "broken", f"in {hook_name}: {_short_error(exc)}"
                continue
            for spec in specs:
                spec.plugin = info.name
                spec.distribution = info.distribution
                registries[key].add(spec)
                info.components.append(f"{key[:-1] if key.endswith('s') else key}:{spec.name}")
    return registries


def load_plugins(*, blocked: Iterable[str] = (), autoload: bool | None = None,
                 requested: Iterable[str] = (), extra: Iterable[tuple[str, Any]] = ()) -> PluginSet:
    """Discover plugins and build the registries (the usual entry point)."""
    pm, infos = get_plugin_manager(blocked=blocked, autoload=autoload, requested=requested,
                                   extra=extra)
    registries = collect(pm, infos)
    return PluginSet(manager=pm, plugins=infos, registries=registries)


def notify(plugins: PluginSet, hook_name: str, log: Any = print, **kwargs: Any) -> None:
    """Call an observer hook plugin by plugin. An observer that raises is marked broken
    (as registration hooks are), reported through ``log`` and not called again; the run
    goes on and still writes its record."""
    caller = getattr(plugins.manager.hook, hook_name)
    for impl in caller.get_hookimpls():
        info = plugins.plugins.setdefault(impl.plugin_name, PluginInfo(name=impl.plugin_name))
        if info.status == "broken":
            continue
        args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
        try:
            impl.function(**args)
        except Exception as exc:  # an observer must never take the run down
            info.status, info.error = "broken", f"in {hook_name}: {_short_error(exc)}"
            log(f"warning: plugin {info.name!r} is broken and is ignored for the rest of the "
                f"run: {info.error}")
