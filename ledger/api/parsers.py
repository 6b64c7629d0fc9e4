"""Strict JSON parsing (bounded nesting, no NUL characters), and YAML for the
views that take it."""

import json
import re
from itertools import accumulate
from typing import Any

import yaml
from rest_framework import exceptions

# get_encoding is in DRF (3.15 on) but not in its stubs.
from rest_framework.parsers import BaseParser, JSONParser, get_encoding  # type: ignore[attr-defined]
from rest_framework.utils.json import strict_constant

# Parsing --------------------------------------------------------------------


# How deep a JSON body may nest: the API's bodies need about 5 levels.
MAX_JSON_DEPTH = 32
# A JSON string literal, escapes included: its brackets are text, not structure.
# One never closed runs to the end of the text (`\Z`): without that, the
# engine would retry from every escaped quote, in time quadratic in the body.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
# Everything but the brackets, once the strings are gone.
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class StrictJSONParser(JSONParser):
    """JSON bodies only, nested at most MAX_JSON_DEPTH levels (checked on the
    text, before Python's recursive parser sees it), without NUL characters
    (PostgreSQL text cannot hold them)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if json_depth_exceeds(text, MAX_JSON_DEPTH):
            raise exceptions.ParseError(
                f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep; "
                "the API's bodies need far fewer."
            )
        try:
            parse_constant = strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if _contains_nul(data):
            raise exceptions.ParseError("JSON strings must not contain NUL (\\u0000) characters.")
        return data


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, at
    any point (an unclosed prefix counts too). Brackets inside strings do not
    count. Runs at C speed: regexes strip the strings and the rest, and the
    depth is a running sum."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def _contains_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL character in any string or key.
    Iterative: a deep value must not exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class SafeYAMLLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (`&a` ... `*a`): a body has no use for
    them, and a few nested ones can expand a small text enormously."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse YAML text with SafeYAMLLoader; yaml.YAMLError (or ValueError for
    a body nested too deep) says what is wrong."""
    try:
        return yaml.load(text, Loader=SafeYAMLLoader)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None


class YAMLParser(BaseParser):
    """YAML bodies (`application/yaml`), for the views that list this parser:
    the same limits as JSON (depth, no NUL), no aliases."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            data = load_yaml(stream.read().decode(encoding))
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise exceptions.ParseError(f"YAML parse error - {exc}") from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(
                f"The YAML body is nested more than {MAX_JSON_DEPTH} levels."
            )
        if _contains_nul(data):
            raise exceptions.ParseError("YAML strings must not contain NUL characters.")
        return data


def _depth(value: Any) -> int:
    """How deep lists and mappings nest in a parsed value (iteratively)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest
