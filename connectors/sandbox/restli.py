"""A strict parser for Rest.li 2.0 query parameter values (LinkedIn's URL syntax).

Grammar (reserved characters `(`, `)`, `,`, `:` stay literal; everything inside strings,
URNs included, is percent-encoded)::

    value  := object | list | string
    object := "(" [ key ":" value ( "," key ":" value )* ] ")"
    list   := "List(" [ value ( "," value )* ] ")"
    string := percent-encoded characters other than the reserved ones (may be empty)

`parse_query` splits a raw query string into `{name: [parsed values]}`; any syntax error
raises `RestliSyntaxError`, which the LinkedIn emulator answers with 400.
"""

from __future__ import annotations

from urllib.parse import unquote

RestliValue = str | list["RestliValue"] | dict[str, "RestliValue"]
_RESERVED = "(),:"


class RestliSyntaxError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> RestliSyntaxError:
        return RestliSyntaxError(f"{what} at position {self.pos} in {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def value(self) -> RestliValue:
        if self.text.startswith("List(", self.pos):
            self.pos += len("List")
            return self.sequence()
        if self.peek() == "(":
            return self.mapping()
        return self.string()

    def sequence(self) -> list[RestliValue]:
        self.expect("(")
        items: list[RestliValue] = []
        if self.peek() == ")":
            self.pos += 1
            return items
        while True:
            items.append(self.value())
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect(")")
            return items

    def mapping(self) -> dict[str, RestliValue]:
        self.expect("(")
        out: dict[str, RestliValue] = {}
        if self.peek() == ")":
            self.pos += 1
            return out
        while True:
            key = self.string()
            if not key:
                raise self.fail("empty key")
            if key in out:
                raise self.fail(f"duplicate key {key!r}")
            self.expect(":")
            out[key] = self.value()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect(")")
            return out

    def string(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _RESERVED:
            self.pos += 1
        raw = self.text[start : self.pos]
        if "%" in raw and not _valid_escapes(raw):
            raise self.fail("bad percent-encoding")
        return unquote(raw)


def _valid_escapes(raw: str) -> bool:
    hexdigits = set("0123456789abcdefABCDEF")
    i = raw.find("%")
    while i != -1:
        if len(raw) < i + 3 or not set(raw[i + 1 : i + 3]) <= hexdigits:
            return False
        i = raw.find("%", i + 3)
    return True


def parse_value(text: str) -> RestliValue:
    parser = _Parser(text)
    value = parser.value()
    if parser.pos != len(text):
        raise parser.fail("unexpected trailing characters")
    return value


def parse_query(raw_query: str) -> dict[str, list[RestliValue]]:
    out: dict[str, list[RestliValue]] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise RestliSyntaxError(f"parameter {name!r} has no value")
        out.setdefault(unquote(name), []).append(parse_value(value))
    return out
