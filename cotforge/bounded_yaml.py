"""YAML from users, read with bounds: no alias bomb, no nesting that would blow the stack.

PyYAML shares an aliased node, so nine levels of nine aliases read in microseconds, but anything that walks
the result (validation, hashing, ``--set``) visits 9**9 nodes. The node graph is measured before it is
constructed: its size with every alias expanded and its depth are bounded, and a recursive alias is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cotforge.errors import ConfigError

MAX_DEPTH = 64
MAX_NODES = 200_000


def read_yaml_file(path: Path, what: str = "YAML file") -> Any:
    """Parse a user's YAML file with bounds; every failure is a :class:`ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found", file=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the {what} itself", file=path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})", file=path) from None
    return load_yaml(text, str(path))


def load_yaml(text: str, source: str = "<string>") -> Any:
    """Parse ``text`` (safe tags only) with bounded depth and alias expansion."""
    try:
        # The reader checks the characters as it is built: a control character is a YAML error too.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})", file=source) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep", file=source) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})", file=source) from None
        if node is None:
            return None
        _check_bounds(node, source)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})", file=source) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_bounds(root: yaml.Node, source: str) -> None:
    # Post-order walk without recursion; a node reached through several aliases is measured once.
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_NODES:
                raise ConfigError(
                    f"{source}: expands to more than {MAX_NODES} values (aliases expanded); "
                    "write the values out or use fewer aliases",
                    file=source,
                )
            if depth[key] > MAX_DEPTH:
                raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep", file=source)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise ConfigError(f"{source}: an alias refers to a mapping or list that contains it", file=source)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)
