"""An INI reader that reads files the way oslo.config does, so Glance's own files work unchanged.

``configparser`` differs from oslo.config in ways that matter for a Glance configuration:
it keeps the quotes of ``store_description = "A store"``, rejects a key given twice (oslo's
multi-valued options such as ``filesystem_store_datadirs`` are written that way), copies
``[DEFAULT]`` into every section and interprets ``%(...)s``. This reader follows oslo's
``iniparser`` instead:

* ``key = value`` or ``key: value``; surrounding whitespace is dropped, and one pair of
  matching quotes around the whole value is removed;
* indented lines continue the previous value (joined with a newline); a blank line ends it;
* lines starting with ``#`` or ``;`` are comments;
* a key given several times keeps every value, in order (single-valued options use the last);
* section names other than ``DEFAULT`` are case-insensitive (oslo lower-cases group names).

oslo's ``$name`` substitution is not implemented: values are taken literally.
"""

from __future__ import annotations

from collections.abc import Iterable

from kglance.drivers import errors

Sections = dict[str, dict[str, list[str]]]

DEFAULT_SECTION = "DEFAULT"


class IniError(errors.ConfigurationError):
    code = "configuration_error"


def normalize_section(name: str) -> str:
    name = name.strip()
    return name if name == DEFAULT_SECTION else name.lower()


def _split_assignment(line: str, *, source: str, lineno: int) -> tuple[str, str]:
    equal, colon = line.find("="), line.find(":")
    if equal < 0 and colon < 0:
        raise IniError(f"{source}:{lineno}: expected 'key = value', got {line.strip()[:40]!r}")
    cut = equal if colon < 0 or (0 <= equal < colon) else colon
    key, value = line[:cut].strip(), line[cut + 1 :].strip()
    if not key:
        raise IniError(f"{source}:{lineno}: empty key")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def parse(lines: Iterable[str], *, source: str = "<config>") -> Sections:
    """Every section's keys with all of their values, in file order."""
    sections: Sections = {}
    section: str | None = None
    key: str | None = None
    value: list[str] = []

    def flush() -> None:
        nonlocal key
        if key is not None:
            assert section is not None
            sections[section].setdefault(key, []).append("\n".join(value))
            key = None

    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n").rstrip()
        if not line:
            flush()
        elif line[0] in " \t":
            if key is None:
                raise IniError(f"{source}:{lineno}: indented line continues nothing")
            value.append(line.lstrip())
        else:
            flush()
            if line.startswith("["):
                if not line.endswith("]") or not line[1:-1].strip():
                    raise IniError(f"{source}:{lineno}: invalid section header {line[:40]!r}")
                section = normalize_section(line[1:-1])
                sections.setdefault(section, {})
            elif line[0] in "#;":
                continue
            elif section is None:
                raise IniError(f"{source}:{lineno}: assignment before the first [section]")
            else:
                key, first = _split_assignment(line, source=source, lineno=lineno)
                value = [first]
    flush()
    return sections
