"""Extract business entities (emails, phones, dates, money, order ids...) from text.

The graph step links documents through the entities they mention, so two
mentions of the same thing must produce the same value: every entity is
normalised to one canonical spelling ("Order #12345" and "ord-12345" are both
``ORD-12345``) and the output order is fixed, so that re-running a document (a
Temporal retry, or the legacy path against the new one) writes an identical
graph.

Extractors are looked up by name from a small registry so that the pipeline
configuration can choose one; an unknown name is an error, never a silent
fallback to a different extractor.

No `from __future__ import annotations` here, as in models.py: `Entity` crosses Temporal
boundaries, and evaluated annotations spare the payload converter compiling them again for
every payload.
"""

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Entity:
    """One distinct entity found in a text.

    ``value`` is the normalised value; ``count`` is how many mentions in the
    text normalise to it.
    """

    type: str
    value: str
    count: int


@runtime_checkable
class EntityExtractor(Protocol):
    """Anything that turns text into a deterministic, sorted list of entities."""

    name: str

    def extract(self, text: str) -> list[Entity]:
        """Return the entities of ``text`` sorted by (type, value)."""
        ...


# A normaliser gets a match and returns the canonical value, or None to reject it.
Normaliser = Callable[[re.Match[str]], str | None]

# Matched spans are overwritten with this character so that later, looser
# patterns (phones last) cannot re-read digits that already belong to a date,
# an amount or an identifier. It is neither a word character nor whitespace.
_MASK = "\x00"

# ---------------------------------------------------------------------------
# URLs and emails
# ---------------------------------------------------------------------------

_URL = re.compile(r"\b[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#<>\"'\x00]+[^\s<>\"'\x00]*")
_URL_TRAILING = ".,;:!?'\")]}>*"
_EMAIL = re.compile(
    r"(?<![\w.+%\-])[A-Za-z0-9._%+\-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,}\b"
)


def _url_span_end(url: str) -> str:
    """Strip trailing punctuation, keeping a ")" that closes a "(" inside the URL."""
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _normalise_url(match: re.Match[str]) -> str | None:
    url = _url_span_end(match.group(0))
    scheme, _, rest = url.partition("://")
    split = re.search(r"[/?#]", rest)
    netloc, tail = (rest[: split.start()], rest[split.start() :]) if split else (rest, "")
    userinfo, at, hostport = netloc.rpartition("@")
    if not hostport:
        return None
    return f"{scheme.lower()}://{userinfo}{at}{hostport.lower()}{tail}"


def _normalise_email(match: re.Match[str]) -> str:
    return match.group(0).lower()


# ---------------------------------------------------------------------------
# Order, invoice and shipment identifiers
# ---------------------------------------------------------------------------

# An identifier body: alphanumeric groups joined by dashes, with at least one digit.
_CODE = r"(?P<code>(?=[A-Za-z0-9\-]*\d)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)"
# What may sit between a keyword and the identifier: "#", "no.", "number:", "id"...
_MARKER = r"\s*(?:#|\b(?:no|nr|num|number|id|ref)\b\.?\s*[:#]?|:)\s*"
_ID_PREFIXES = {"order_id": "ORD", "invoice_id": "INV", "shipment_id": "SHP"}
_ID_KEYWORDS = {
    "order_id": r"order",
    "invoice_id": r"invoice",
    "shipment_id": r"(?:shipment|tracking)",
}


def _id_patterns(kind: str) -> list[re.Pattern[str]]:
    """``PREFIX-123`` written out, and ``<keyword> #123`` in prose."""
    prefix, keyword = _ID_PREFIXES[kind], _ID_KEYWORDS[kind]
    return [
        re.compile(rf"(?<![\w\-]){prefix}(?:[-_]|(?=\d)){_CODE}(?![\w\-])", re.IGNORECASE),
        re.compile(rf"\b{keyword}{_MARKER}{_CODE}(?![\w\-])", re.IGNORECASE),
    ]


def _id_normaliser(kind: str) -> Normaliser:
    prefix = _ID_PREFIXES[kind]

    def normalise(match: re.Match[str]) -> str | None:
        code = match.group("code").upper()
        # "Order #ORD-123" names the same order as "ORD-123".
        code = re.sub(rf"^{prefix}[-_]?", "", code) or code
        return f"{prefix}-{code}" if len(code) >= 3 else None

    return normalise


# ---------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCIES = "USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|INR|SEK|NOK|DKK|PLN|CZK|MXN|BRL|ZAR|SGD|HKD"
# US thousands (1,234.50), European thousands (1.234,50), decimal comma (9,99), plain
# (0.005). "1.234" is read as European thousands; a leading zero makes it a decimal.
_AMOUNT = (
    r"(?P<amount>[1-9]\d{0,2}(?:,\d{3})+(?:\.\d{1,2})?|[1-9]\d{0,2}(?:\.\d{3})+(?:,\d{1,2})?"
    r"|\d+,\d{1,2}|\d+(?:\.\d+)?)(?![.,]?\d)"
)
_MONEY = [
    re.compile(rf"(?<![\w.,])(?P<cur>[$€£])\s?{_AMOUNT}"),
    re.compile(rf"\b(?P<cur>{_CURRENCIES})\s?{_AMOUNT}"),
    re.compile(rf"(?<![\w.,]){_AMOUNT}\s?(?P<cur>{_CURRENCIES})\b"),
    re.compile(rf"(?<![\w.,]){_AMOUNT}\s?(?P<cur>[€£])"),
]


def _parse_amount(raw: str) -> Decimal:
    """Read an amount written with either thousands/decimal convention."""
    european = re.fullmatch(r"[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?", raw) is not None
    decimal_comma = "." not in raw and re.fullmatch(r"\d+,\d{1,2}", raw) is not None
    if european or decimal_comma:  # "1.234,50" and "9,99"; "1,000" stays one thousand
        raw = raw.replace(".", "").replace(",", ".")
    return Decimal(raw.replace(",", ""))


def _normalise_money(match: re.Match[str]) -> str:
    currency = _SYMBOLS.get(match.group("cur"), match.group("cur"))
    amount = _parse_amount(match.group("amount")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{currency} {amount}"


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<month>(?i:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r"))\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATES = [
    # ISO 2024-01-31 (a time may follow: 2024-01-31T10:00).
    re.compile(r"(?<![\w\-/.])(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})(?![\d\-/])"),
    # January 31, 2024 / Jan. 31st 2024
    re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}}){_ORDINAL},?\s+(?P<year>\d{{4}})\b"),
    # 31 Jan 2024 / 31st of January, 2024
    re.compile(rf"\b(?P<day>\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+(?P<year>\d{{4}})\b"),
    # US style 01/31/2024: month first, never guessed the other way round.
    re.compile(r"(?<![\w/.\-])(?P<mon>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})(?![\w/])"),
]


def _normalise_date(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    month = int(groups["mon"]) if groups.get("mon") else _MONTHS[groups["month"].lower()]
    try:
        return date(int(groups["year"]), month, int(groups["day"])).isoformat()
    except ValueError:  # 2024-02-30, 13/01/2024: shaped like a date, but not one
        return None


# ---------------------------------------------------------------------------
# Phone numbers (matched last, on text where everything above is masked)
# ---------------------------------------------------------------------------

_PHONE_BEFORE = r"(?<![\w+#$€£/.,\-])"
_PHONE_AFTER = r"(?![\w\-/]|[.,]\d)"
_PHONES = [
    # International: +1 (415) 555-0100, +44 20 7946 0958, +14155550100
    re.compile(
        _PHONE_BEFORE
        + r"\+\d{1,4}(?:[ .\-]?\(\d{1,4}\))?[ .\-]?\d+(?:[ .\-]\d{2,})*"
        + _PHONE_AFTER
    ),
    # North American: (415) 555-0100, 415-555-0100, 415.555.0100, 1-800-555-0100
    re.compile(
        _PHONE_BEFORE + r"(?:1[ .\-])?(?:\(\d{3}\)\s?|\d{3}[ .\-])\d{3}[ .\-]\d{4}" + _PHONE_AFTER
    ),
    # National with trunk zero: 020 7946 0958, 06 12 34 56 78
    re.compile(_PHONE_BEFORE + r"0\d{1,4}(?:[ \-]\d{2,4}){2,4}" + _PHONE_AFTER),
    # Anything phone-shaped right after a phone keyword: "Tel: 4155550100".
    re.compile(
        r"(?i:\b(?:tel|telephone|phone|mobile|cell|fax)\b)\.?:?\s*"
        r"(?P<number>\+?[\d(][\d ().\-]{5,}\d)" + _PHONE_AFTER
    ),
]
# Digit groups shaped like a date (31-01-2024, 2024 01 31) are never phone numbers.
_DATE_SHAPED = re.compile(r"\d{1,2}[.\-/ ]\d{1,2}[.\-/ ]\d{2,4}|\d{4}[.\-/ ]\d{1,2}[.\-/ ]\d{1,2}")


def _normalise_phone(match: re.Match[str]) -> str | None:
    raw = match.groupdict().get("number") or match.group(0)
    if _DATE_SHAPED.fullmatch(raw.strip()):
        return None
    digits = re.sub(r"\D", "", raw.replace("(0)", ""))
    if not 7 <= len(digits) <= 15:
        return None
    return f"+{digits}" if raw.startswith("+") else digits


# ---------------------------------------------------------------------------
# The extractor
# ---------------------------------------------------------------------------

# Order matters: each rule only sees text the earlier rules left unmasked.
_RULES: list[tuple[str, re.Pattern[str], Normaliser]] = [
    ("url", _URL, _normalise_url),
    ("email", _EMAIL, _normalise_email),
    *(
        (kind, pattern, _id_normaliser(kind))
        for kind in ("invoice_id", "order_id", "shipment_id")
        for pattern in _id_patterns(kind)
    ),
    *(("money", pattern, _normalise_money) for pattern in _MONEY),
    *(("date", pattern, _normalise_date) for pattern in _DATES),
    *(("phone", pattern, _normalise_phone) for pattern in _PHONES),
]
# Shapes that are masked even when rejected, so their digits never become phones.
_MASK_REJECTED = frozenset({"date", "invoice_id", "order_id", "shipment_id"})


def _apply_rule(
    text: str,
    kind: str,
    pattern: re.Pattern[str],
    normalise: Normaliser,
    found: Counter[tuple[str, str]],
) -> str:
    """Record every accepted match of ``pattern`` and return ``text`` with it masked."""

    def replace(match: re.Match[str]) -> str:
        value = normalise(match)
        if value is None and kind not in _MASK_REJECTED:
            return match.group(0)  # not ours: leave it for a later rule
        if value is not None:
            found[(kind, value)] += 1
        return _MASK * len(match.group(0))

    # One re.sub per rule keeps extraction linear in the size of the text.
    return pattern.sub(replace, text)


class PatternEntityExtractor:
    """Deterministic regular-expression extractor, registered as ``"patterns"``."""

    name: str = "patterns"

    def extract(self, text: str) -> list[Entity]:
        """Return the entities of ``text``, one per (type, value), sorted by (type, value)."""
        found: Counter[tuple[str, str]] = Counter()
        for kind, pattern, normalise in _RULES:
            text = _apply_rule(text, kind, pattern, normalise, found)
        return [Entity(kind, value, count) for (kind, value), count in sorted(found.items())]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_REGISTRY: dict[str, EntityExtractor] = {}


def register_extractor(extractor: EntityExtractor, *, replace: bool = False) -> None:
    """Make ``extractor`` available under ``extractor.name``.

    Registering a different extractor under a taken name raises ValueError unless
    ``replace`` is true, so that two modules cannot silently shadow each other.
    """
    if not isinstance(extractor, EntityExtractor):
        raise TypeError(f"{extractor!r} does not implement EntityExtractor")
    current = _REGISTRY.get(extractor.name)
    if current is not None and current is not extractor and not replace:
        raise ValueError(f"an entity extractor named {extractor.name!r} is already registered")
    _REGISTRY[extractor.name] = extractor


def get_extractor(name: str) -> EntityExtractor:
    """Return the extractor registered as ``name``; ValueError lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ValueError(f"unknown entity extractor {name!r}; known: {known}") from None


register_extractor(PatternEntityExtractor())
