"""PII detection on realistic values, the Luhn check, and masking."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leptonic.errors import InvalidInput
from leptonic.governance.pii import (
    PII_KINDS,
    MaskingPolicy,
    detect_pii,
    detect_pii_in_table,
    hash_value,
    luhn_valid,
    mask_table,
)

# Published test numbers of the card networks: all pass the Luhn check.
VALID_CARDS = [
    "4111 1111 1111 1111",  # Visa
    "4012888888881881",  # Visa
    "5555-5555-5555-4444",  # Mastercard
    "5105 1051 0510 5100",  # Mastercard
    "3782 822463 10005",  # American Express (15 digits)
    "371449635398431",  # American Express
    "6011 1111 1111 1117",  # Discover
    "3530111333300000",  # JCB
    "4222222222222",  # Visa, 13 digits
    "6011000990139424",  # Discover
]
INVALID_CARDS = [
    "4111 1111 1111 1112",
    "5555-5555-5555-4445",
    "3782 822463 10006",
    "1234 5678 9012 3456",
    "6011111111111118",
    "4012888888881882",
    "5105105105105101",
    "371449635398432",
    "3530111333300001",
    "4222222222223",
]
EMAILS = [
    "ada.lovelace@example.com",
    "grace_hopper+bank@navy.mil",
    "j.smith@mail.co.uk",
    "o'brien@example.ie",
    "CUSTOMER42@Example.ORG",
    "x@y.io",
    "first-last@sub.domain.example.net",
    "maria.garcia@correo.es",
    "li.wei@example.cn",
    "n.okafor@bank.ng",
]
PHONES = [
    "+44 20 7946 0958",
    "+1 (415) 555-2671",
    "(212) 555-0100",
    "555-0134",
    "020 7946 0018",
    "+33 1 42 68 53 00",
    "+49-30-901820",
    "07700 900123",
    "415.555.2671",
    "+81 3-1234-5678",
]
SSNS = [
    "078-05-1120",
    "219-09-9999",
    "123-45-6789",
    "457-55-5462",
    "001-01-0001",
    "536-22-1234",
    "609-33-8765",
    "772-10-4411",
    "345-67-8901",
    "231-88-0042",
]
NAMES = [
    "Ada Lovelace",
    "Grace Hopper",
    "José Álvarez",
    "Mary-Jane O'Neil",
    "Li Wei",
    "Chinonso Okafor",
    "Anna Maria Svensson",
    "Zoë",
    "Jean-Luc Picard",
    "Björn Ulvaeus",
]


@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_accepts_valid_card_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", INVALID_CARDS)
def test_luhn_rejects_invalid_card_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("text", ["", "4", "abcd efgh", "4111 1111 1111 111x", "٤١١١"])
def test_luhn_rejects_non_digits(text: str) -> None:
    assert not luhn_valid(text)


def _kind(name: str, values: list[object]) -> str | None:
    return detect_pii_in_table(pa.table({name: values})).get(name)


def test_each_kind_is_detected_on_realistic_values() -> None:
    assert _kind("contact", EMAILS) == "email"
    assert _kind("pan", VALID_CARDS) == "card_number"
    assert _kind("ref", SSNS) == "national_id"
    assert _kind("contact_number", PHONES) == "phone"
    assert _kind("customer_name", NAMES) == "person_name"
    assert set(PII_KINDS) == {"email", "card_number", "national_id", "phone", "person_name"}


def test_card_like_numbers_that_fail_luhn_are_not_cards() -> None:
    assert _kind("pan", INVALID_CARDS) is None


def test_threshold_counts_the_share_of_matching_values() -> None:
    mostly = [*EMAILS[:7], "n/a", "unknown", "-"]
    assert _kind("contact", mostly) == "email"  # 70 %
    half = [*EMAILS[:5], "n/a", "unknown", "-", "none", "?"]
    assert _kind("contact", half) is None  # 50 % < 60 %
    assert detect_pii_in_table(pa.table({"c": half}), threshold=0.5) == {"c": "email"}


def test_nulls_are_not_counted() -> None:
    assert _kind("contact", [*EMAILS, None, None, None, None, None]) == "email"
    assert _kind("contact", [None, None]) is None


def test_names_need_a_name_like_column() -> None:
    assert _kind("full_name", NAMES) == "person_name"
    assert _kind("surname", ["Smith", "Jones", "Brown", "Okafor"]) == "person_name"
    assert _kind("city", ["Paris", "London", "New York", "Rio De Janeiro"]) is None
    assert _kind("company_name", ["Acme Ltd", "Globex", "Initech"]) is None
    assert _kind("name", ["widget", "gadget", "gizmo"]) is None  # not capitalised words


def test_things_that_look_like_digits_are_not_phones() -> None:
    assert _kind("opened", ["2021-01-05", "2022-11-30", "2020-02-29"]) is None
    assert _kind("amount", ["1234.5678", "99812.25", "1000000.00"]) is None
    assert _kind("ip", ["192.168.1.10", "10.0.0.1", "172.16.254.1"]) is None
    assert _kind("account", ["12345678", "87654321", "11223344"]) is None


def test_bare_digit_phones_need_a_phone_like_column() -> None:
    digits = ["4155552671", "2125550100", "7700900123", "2079460958"]
    assert _kind("mobile", digits) == "phone"
    assert _kind("telephone_number", digits) == "phone"
    assert _kind("reference", digits) is None


def test_national_id_by_column_name() -> None:
    assert _kind("passport_no", ["X1234567", "P9988776", "K5544332"]) == "national_id"
    assert _kind("ssn", [78051120, 219099999, 123456789]) == "national_id"
    assert _kind("national_id", ["A", "B"]) is None  # too short to be an identifier


def test_integer_card_numbers_are_detected() -> None:
    numbers = [int(c.replace(" ", "").replace("-", "")) for c in VALID_CARDS]
    assert _kind("card", numbers) == "card_number"
    assert _kind("customer_id", list(range(1, 11))) is None


def test_codes_and_categories_are_not_pii() -> None:
    table = pa.table(
        {
            "telephone": ["A191", "A192", "A191"],  # German credit: a yes/no code
            "purpose": ["car", "education", "radio/tv"],
            "age": [25, 47, 33],
            "score": [0.5, 0.25, 0.125],
        }
    )
    assert detect_pii_in_table(table) == {}


def test_detect_pii_on_parquet_reads_a_bounded_even_sample(tmp_path: Path) -> None:
    n = 50_000
    emails = [f"user{i}@example.com" if i % 1000 else "n/a" for i in range(n)]
    cards = [VALID_CARDS[i % len(VALID_CARDS)] for i in range(n)]
    path = tmp_path / "p.parquet"
    table = pa.table({"id": list(range(n)), "email": emails, "card": cards, "x": [1.0] * n})
    pq.write_table(table, path, row_group_size=10_000)
    assert detect_pii(path, sample_size=1000) == {"email": "email", "card": "card_number"}
    assert detect_pii(path, sample_size=1000, columns=["card"]) == {"card": "card_number"}


def test_detect_pii_on_sorted_data_samples_the_whole_file(tmp_path: Path) -> None:
    # the first 40 % of rows are blank codes, the rest e-mails: a head-only sample would miss them
    n = 10_000
    values = ["-"] * 4000 + [f"u{i}@example.com" for i in range(n - 4000)]
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"contact": values}), path)
    assert detect_pii(path, sample_size=500) == {"contact": "email"}


def test_detect_pii_argument_checks(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": ["a"]}), path)
    with pytest.raises(InvalidInput, match="threshold"):
        detect_pii(path, threshold=0)
    with pytest.raises(InvalidInput, match="sample_size"):
        detect_pii(path, sample_size=0)


# -- masking -------------------------------------------------------------------


def _people() -> pa.Table:
    return pa.table(
        {
            "email": ["ada@example.com", None, "ada@example.com", "bob@example.com"],
            "card": ["4111 1111 1111 1111", "5555-5555-5555-4444", None, "4012888888881881"],
            "phone": ["+44 20 7946 0958", None, "555-0134", "(212) 555-0100"],
            "ssn": [78051120, None, 123456789, 219099999],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )


PII = {"email": "email", "card": "card_number", "phone": "phone", "ssn": "national_id"}


def test_hash_is_salted_stable_and_keeps_nulls() -> None:
    masked = mask_table(_people(), PII, "hash", "salt-a")
    emails = masked.column("email").to_pylist()
    expected = hmac.new(b"salt-a", b"ada@example.com", hashlib.sha256).hexdigest()[:16]
    assert emails[0] == emails[2] == expected == hash_value("ada@example.com", "salt-a")
    assert emails[1] is None
    assert emails[3] != emails[0]
    other = mask_table(_people(), PII, MaskingPolicy.HASH, "salt-b").column("email").to_pylist()
    assert other[0] != emails[0]
    assert masked.column("ssn").type == pa.string()
    assert masked.column("ssn").to_pylist()[1] is None
    assert masked.column("amount").to_pylist() == [1.0, 2.0, 3.0, 4.0]
    assert "ada" not in str(masked.to_pylist())


def test_hash_length() -> None:
    masked = mask_table(_people(), {"email": "email"}, "hash", "s", hash_length=8)
    assert len(masked.column("email")[0].as_py()) == 8


def test_redact_keeps_last_digits_of_cards_and_phones() -> None:
    masked = mask_table(_people(), PII, "redact")
    assert masked.column("card").to_pylist() == ["***1111", "***4444", None, "***1881"]
    assert masked.column("phone").to_pylist() == ["***0958", None, "***0134", "***0100"]
    assert masked.column("email").to_pylist() == ["***", None, "***", "***"]
    assert masked.column("ssn").to_pylist() == ["***", None, "***", "***"]
    bare = mask_table(_people(), PII, "redact", keep_last=0)
    assert bare.column("card").to_pylist() == ["***", "***", None, "***"]


def test_drop_removes_pii_columns() -> None:
    masked = mask_table(_people(), PII, "drop")
    assert masked.column_names == ["amount"]


def test_mask_ignores_columns_not_in_the_table() -> None:
    table = pa.table({"amount": [1.0]})
    assert mask_table(table, PII, "hash", "s").equals(table)


def test_mask_argument_errors() -> None:
    with pytest.raises(InvalidInput, match="unknown masking policy 'blur'; use one of hash"):
        mask_table(_people(), PII, "blur", "s")
    with pytest.raises(InvalidInput, match="needs a salt: pass the workspace's pii_salt"):
        mask_table(_people(), PII, "hash")


def test_mask_dictionary_and_chunked_columns() -> None:
    chunked = pa.chunked_array([["a@x.org", None], ["b@y.org"]])
    table = pa.table({"email": chunked, "cat": pa.array(["u", "v", "u"]).dictionary_encode()})
    masked = mask_table(table, {"email": "email", "cat": "other"}, "hash", "s")
    assert masked.column("email").to_pylist()[1] is None
    cats = masked.column("cat").to_pylist()
    assert cats[0] == cats[2] != cats[1]


def test_list_columns_are_detected_and_masked_element_by_element(tmp_path: Path) -> None:
    emails = pa.array(
        [["ada@example.com", "ada@work.org"], None, [], ["bob@example.com", None]],
        pa.large_list(pa.string()),
    )
    table = pa.table({"emails": emails, "n": [1, 2, 3, 4]})
    path = tmp_path / "lists.parquet"
    pq.write_table(table, path)
    assert detect_pii_in_table(table) == {"emails": "email"} == detect_pii(path)
    hashed = mask_table(table, {"emails": "email"}, "hash", "s1").column("emails").to_pylist()
    assert hashed == [
        [hash_value("ada@example.com", "s1"), hash_value("ada@work.org", "s1")],
        None,
        [],
        [hash_value("bob@example.com", "s1"), None],
    ]
    redacted = mask_table(table.slice(1), {"emails": "email"}, "redact").column("emails")
    assert redacted.to_pylist() == [None, [], ["***", None]]


def test_values_with_surrounding_spaces_are_detected() -> None:
    assert _kind("contact", [f" {e}" for e in EMAILS]) == "email"
    assert _kind("contact_number", [f"{p}  " for p in PHONES]) == "phone"
    assert _kind("contact", [*(f"\t{e} " for e in EMAILS[:7]), "  ", " ", ""]) == "email"


def test_codes_dates_and_grouped_numbers_are_not_phones() -> None:
    assert _kind("zip", ["12345-6789", "90210-1234", "10001-0001"]) is None
    assert _kind("amount", ["1 234 567", "2 345 678", "12 345 678"]) is None
    assert _kind("amount", ["1.234.567", "2.345.678", "12.345.678"]) is None
    assert _kind("opened", ["2024.01.02", "2024.01.03", "2023.12.31"]) is None
    assert _kind("isbn", ["978-3-16-148410-0", "978-0-306-40615-7", "978-1-4028-9462-6"]) is None
    assert _kind("hours", ["0800-1700", "0900-1800", "1000-1900"]) is None
    # other dashed or dotted digits need a phone-like column name; + or (area code), or
    # the North American layout, do not
    dashed = ["55-512-34567", "55-598-76543", "21-255-50100"]
    assert _kind("reference", dashed) is None
    assert _kind("home_phone", dashed) == "phone"
    assert _kind("emergency_contact", ["555-123-4567", "555.987.6543", "212-555-0100"]) == "phone"
    assert _kind("contact", ["+1 555-123-4567", "(555) 987-6543", "+44 20 7946 0958"]) == "phone"
    assert _kind("mobile", ["612 345 678", "698 765 432", "611 122 233"]) == "phone"


def test_last_first_names_and_camel_case_column_names() -> None:
    assert _kind("full_name", ["Lovelace, Ada", "Hopper, Grace", "Turing, Alan"]) == "person_name"
    assert _kind("fullName", NAMES) == "person_name"
    assert _kind("full_name", ["Lovelace,", "Hopper,", "Turing,"]) is None
    ssns = ["123456789", "987654321", "111223333"]
    assert _kind("socialSecurityNumber", ssns) == "national_id"
    assert _kind("passportNo", ["X1234567", "P9988776", "K5544332"]) == "national_id"


def _contacts() -> pa.Table:
    contacts = pa.array(
        [
            [{"email": "ada@example.com", "phone": "+44 20 7946 0001", "rank": 1}],
            None,
            [],
            [
                {"email": "bob@example.com", "phone": None, "rank": 2},
                {"email": "cy@example.org", "phone": "+44 20 7946 0003", "rank": 3},
            ],
        ]
    )
    return pa.table({"id": [1, 2, 3, 4], "contacts": contacts})


def test_lists_of_records_are_scanned_field_by_field(tmp_path: Path) -> None:
    table = _contacts()
    path = tmp_path / "contacts.parquet"
    pq.write_table(table, path)
    assert detect_pii_in_table(table) == {"contacts": "email"} == detect_pii(path)
    # each field is tested under its own name
    people = pa.table({"people": pa.array([{"name": "Ada Lovelace", "city": "Paris"}] * 3)})
    assert detect_pii_in_table(people) == {"people": "person_name"}
    numbers = pa.table({"items": pa.array([[{"sku": "A-1", "qty": 2}]] * 3)})
    assert detect_pii_in_table(numbers) == {}


def test_lists_of_records_are_masked_field_by_field() -> None:
    table = _contacts()
    hashed = mask_table(table, {"contacts": "email"}, "hash", "s1").column("contacts").to_pylist()

    def h(value: str) -> str:
        return hash_value(value, "s1")

    assert hashed == [
        [{"email": h("ada@example.com"), "phone": h("+44 20 7946 0001"), "rank": h("1")}],
        None,
        [],
        [
            {"email": h("bob@example.com"), "phone": None, "rank": h("2")},
            {"email": h("cy@example.org"), "phone": h("+44 20 7946 0003"), "rank": h("3")},
        ],
    ]
    redacted = mask_table(table, {"contacts": "email"}, "redact").column("contacts").to_pylist()
    assert redacted[0] == [{"email": "***", "phone": "***", "rank": "***"}]
    assert redacted[1:3] == [None, []]
    assert redacted[3][0] == {"email": "***", "phone": None, "rank": "***"}
    assert mask_table(table, {"contacts": "email"}, "drop").column_names == ["id"]
