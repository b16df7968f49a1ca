"""Unit tests for ingestion_worker.entities: normalisation, counts, negatives, registry."""

from __future__ import annotations

import pytest
from ingestion_worker.entities import (
    Entity,
    EntityExtractor,
    PatternEntityExtractor,
    get_extractor,
    register_extractor,
)

EXTRACTOR = PatternEntityExtractor()


def values(text: str, kind: str) -> list[str]:
    """Normalised values of one entity type found in ``text``."""
    return [entity.value for entity in EXTRACTOR.extract(text) if entity.type == kind]


def types(text: str) -> set[str]:
    return {entity.type for entity in EXTRACTOR.extract(text)}


# --------------------------------------------------------------------------- emails and urls


def test_emails_are_lower_cased() -> None:
    assert values("Write to Bob.Smith@Example.COM.", "email") == ["bob.smith@example.com"]


def test_url_scheme_and_host_are_lower_cased_but_path_is_kept() -> None:
    assert values("See HTTPS://Shop.Example.COM/Orders/A?x=1.", "url") == [
        "https://shop.example.com/Orders/A?x=1"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(see https://example.com/page).", "https://example.com/page"),
        ("Go to http://example.com, then", "http://example.com"),
        (
            "wiki: https://en.wikipedia.org/wiki/Foo_(bar).",
            "https://en.wikipedia.org/wiki/Foo_(bar)",
        ),
        ('"https://example.com/q?a=1&b=2"!', "https://example.com/q?a=1&b=2"),
    ],
)
def test_url_trailing_punctuation_is_stripped(text: str, expected: str) -> None:
    assert values(text, "url") == [expected]


def test_ids_and_numbers_inside_a_url_are_not_separate_entities() -> None:
    text = "Track at https://example.com/orders/ORD-12345/4155550100"
    assert types(text) == {"url"}


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +1 (415) 555-0100 today", "+14155550100"),
        ("Call +14155550100.", "+14155550100"),
        ("UK office +44 (0)20 7946 0958", "+442079460958"),
        ("Desk: (415) 555-0101", "4155550101"),
        ("Desk: 415-555-0102 or", "4155550102"),
        ("Desk 415.555.0103", "4155550103"),
        ("Toll free 1-800-555-0199", "18005550199"),
        ("London 020 7946 0958", "02079460958"),
        ("Tel: 4155550104", "4155550104"),
        ("Phone 555-0100", "5550100"),
    ],
)
def test_phone_numbers_are_normalised_to_digits(text: str, expected: str) -> None:
    assert values(text, "phone") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "Due 2024-01-31 at the latest",  # ISO date
        "Due 01/31/2024 at the latest",  # US date
        "Due 31-01-2024 or 31.01.2024",  # European dates we do not extract as dates
        "Invoice INV-2024-0001 attached",  # invoice number
        "Invoice #4155550100 attached",  # invoice number that looks like a phone
        "Order no. 41555501000",  # order number
        "Total $4,155,550,100.00",  # money
        "Reference 12345678 and id 4155550100",  # bare ids without phone context
        "pages 100-2000, years 1990-2000",  # ranges
        "pi is 3.14159265 and the host is 192.168.100.200",  # decimals, IPs
        "Tel: 12345",  # too few digits even with context
        "Call +1 234 567 890 123 456 789",  # too many digits (> 15)
    ],
)
def test_things_that_are_not_phone_numbers(text: str) -> None:
    assert values(text, "phone") == []


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-31",
        "January 31, 2024",
        "Jan. 31st 2024",
        "31 Jan 2024",
        "31st of January, 2024",
        "01/31/2024",
        "1/31/2024",
        "at 2024-01-31T10:00:00Z",
    ],
)
def test_dates_are_normalised_to_iso(text: str) -> None:
    assert values(text, "date") == ["2024-01-31"]


@pytest.mark.parametrize("text", ["2024-02-30", "February 30, 2024", "13/01/2024", "31 Sept 2023"])
def test_invalid_dates_are_dropped(text: str) -> None:
    assert values(text, "date") == []
    assert values(text, "phone") == []  # and their digits do not turn into something else


def test_leap_day_is_valid_only_in_leap_years() -> None:
    assert values("2024-02-29 and 2023-02-29", "date") == ["2024-02-29"]


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Total $1,234.50 due", "USD 1234.50"),
        ("Total USD 1234.5 due", "USD 1234.50"),
        ("Total USD1234 due", "USD 1234.00"),
        ("Only €99!", "EUR 99.00"),
        ("Fee £5.00.", "GBP 5.00"),
        ("Budget 1,000 EUR.", "EUR 1000.00"),
        ("Preis 1.234,50 €", "EUR 1234.50"),
        ("Preis 9,99€", "EUR 9.99"),
        ("Rounded $0.005", "USD 0.01"),
        ("Unit price $0.125", "USD 0.13"),
        ("Preis 1.000 €", "EUR 1000.00"),
    ],
)
def test_money_is_normalised_to_currency_code_and_two_decimals(text: str, expected: str) -> None:
    assert values(text, "money") == [expected]


def test_money_is_not_a_date_or_phone() -> None:
    assert types("Paid $4,155,550,100 on time") == {"money"}


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("Re: ORD-12345", "order_id", "ORD-12345"),
        ("Re: Order #12345", "order_id", "ORD-12345"),
        ("Re: order no. 12345", "order_id", "ORD-12345"),
        ("Re: Order number: 12345", "order_id", "ORD-12345"),
        ("Re: order #ord-12345", "order_id", "ORD-12345"),
        ("Re: INV-2024-0001", "invoice_id", "INV-2024-0001"),
        ("Re: Invoice #778", "invoice_id", "INV-778"),
        ("Re: invoice no. 778", "invoice_id", "INV-778"),
        ("Re: SHP-99812", "shipment_id", "SHP-99812"),
        ("Re: tracking number ABC123456", "shipment_id", "SHP-ABC123456"),
        ("Re: shipment no: 1z999aa10123456784", "shipment_id", "SHP-1Z999AA10123456784"),
    ],
)
def test_identifiers_have_an_upper_cased_canonical_form(
    text: str, kind: str, expected: str
) -> None:
    assert values(text, kind) == [expected]


@pytest.mark.parametrize(
    "text",
    ["in order to ship 30000 units", "the border #12345", "ORDERS are up", "invoice was sent"],
)
def test_words_near_numbers_are_not_identifiers(text: str) -> None:
    assert types(text) & {"order_id", "invoice_id", "shipment_id"} == set()


# --------------------------------------------------------------------------- counts and order


def test_counts_are_occurrences_of_the_normalised_value() -> None:
    text = (
        "Order #12345 shipped. Re ORD-12345: order no. 12345 is late. "
        "Mail ADA@example.com or ada@EXAMPLE.com. Due 2024-01-31 (January 31, 2024)."
    )
    assert EXTRACTOR.extract(text) == [
        Entity("date", "2024-01-31", 2),
        Entity("email", "ada@example.com", 2),
        Entity("order_id", "ORD-12345", 3),
    ]


def test_given_a_rich_text_when_extracting_then_output_is_sorted_and_deterministic() -> None:
    text = (
        "Invoice #778 for order ORD-1001, $1,234.50 due 2024-03-01. "
        "Questions: billing@example.com, +1 (415) 555-0100, https://example.com/help. "
        "Shipment SHP-99812 left on 1 Mar 2024."
    )
    first = EXTRACTOR.extract(text)
    second = PatternEntityExtractor().extract(text)
    assert first == second
    assert first == sorted(first, key=lambda entity: (entity.type, entity.value))
    assert [(entity.type, entity.value) for entity in first] == [
        ("date", "2024-03-01"),
        ("email", "billing@example.com"),
        ("invoice_id", "INV-778"),
        ("money", "USD 1234.50"),
        ("order_id", "ORD-1001"),
        ("phone", "+14155550100"),
        ("shipment_id", "SHP-99812"),
        ("url", "https://example.com/help"),
    ]
    assert [entity.count for entity in first] == [2, 1, 1, 1, 1, 1, 1, 1]


def test_text_without_entities_gives_an_empty_list() -> None:
    assert EXTRACTOR.extract("Nothing to see here, just words.") == []
    assert EXTRACTOR.extract("") == []


def test_entities_are_immutable_values() -> None:
    entity = Entity("email", "a@b.co", 1)
    assert entity == Entity("email", "a@b.co", 1)
    with pytest.raises(AttributeError):
        entity.count = 2  # type: ignore[misc]


# --------------------------------------------------------------------------- registry


def test_patterns_extractor_is_registered_by_default() -> None:
    extractor = get_extractor("patterns")
    assert isinstance(extractor, PatternEntityExtractor)
    assert extractor.name == "patterns"


def test_given_an_unknown_name_when_getting_an_extractor_then_value_error_lists_known() -> None:
    with pytest.raises(ValueError, match=r"'spacy'.*known: .*patterns"):
        get_extractor("spacy")


class _UpperWords:
    """A trivial extractor: every all-caps word is an acronym."""

    name = "test-upper-words"

    def extract(self, text: str) -> list[Entity]:
        words = sorted({word for word in text.split() if word.isupper()})
        return [Entity("acronym", word, text.split().count(word)) for word in words]


def test_registered_extractor_is_returned_by_name() -> None:
    extractor = _UpperWords()
    register_extractor(extractor, replace=True)
    assert get_extractor("test-upper-words") is extractor
    assert isinstance(extractor, EntityExtractor)
    assert get_extractor("test-upper-words").extract("NASA and ESA and NASA") == [
        Entity("acronym", "ESA", 1),
        Entity("acronym", "NASA", 2),
    ]


def test_registering_a_different_extractor_under_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_extractor(PatternEntityExtractor())
    assert get_extractor("patterns") is not None


def test_registering_an_object_that_is_not_an_extractor_is_refused() -> None:
    with pytest.raises(TypeError):
        register_extractor(object())  # type: ignore[arg-type]
