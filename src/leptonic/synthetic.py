"""Realistic synthetic business data for the demo, tests and benchmarks.

:func:`applicants` makes a bank's loan-applicant table: identity columns
(personal data), employment, income and debt, six months of card
utilisation, payment history, a few missing values and outliers, and a
``default`` label that depends on them non-linearly. Nothing is downloaded;
the same seed gives the same table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

__all__ = [
    "applicants",
    "support_messages",
    "support_tickets",
    "write_applicants_csv",
    "write_support_messages_csv",
]

_FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoe",
]
_LAST = [
    "Almeida",
    "Brandt",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Moreau",
    "Nowak",
    "Olsen",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Young",
    "Zielinski",
]
_EMPLOYMENT = np.array(["salaried", "self_employed", "unemployed", "retired", "student"])
_EMPLOYMENT_P = np.array([0.62, 0.17, 0.07, 0.09, 0.05])
_HOME = np.array(["mortgage", "rent", "own", "with_family"])
_PURPOSE = np.array(
    ["car", "home_improvement", "debt_consolidation", "education", "travel", "other"]
)
_REGION = np.array(["north", "south", "east", "west", "capital"])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def applicants(n: int = 20_000, seed: int = 7) -> pa.Table:
    """A synthetic applicant table with a non-linear ``default`` label.

    Parameters
    ----------
    n
        Rows.
    seed
        Random seed.
    """
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(41, 12, n), 18, 85).round()
    employment = rng.choice(_EMPLOYMENT, n, p=_EMPLOYMENT_P)
    employment = np.where((age > 66) & (rng.random(n) < 0.8), "retired", employment)
    employment = np.where((age < 24) & (rng.random(n) < 0.5), "student", employment)
    years = np.clip(rng.gamma(2.0, 4.0, n), 0, age - 16).round(1)
    years = np.where(np.isin(employment, ["unemployed", "student"]), 0.0, years)
    base_income = {"salaried": 52_000, "self_employed": 61_000, "unemployed": 9_000,
                   "retired": 27_000, "student": 11_000}  # fmt: skip
    income = np.array([base_income[e] for e in employment]) * rng.lognormal(0, 0.45, n)
    income *= 1 + 0.012 * np.minimum(years, 25)
    monthly_debt = np.maximum(0, income / 12 * rng.beta(2, 6, n) + rng.normal(0, 80, n))
    dti = monthly_debt / np.maximum(income / 12, 1)
    limit = np.round(np.clip(income * rng.uniform(0.1, 0.4, n), 500, 60_000), -2)
    # six months of utilisation with a per-applicant trend
    level = rng.beta(2, 4, n)
    trend = rng.normal(0, 0.03, n) + 0.04 * (dti > 0.45)
    months = np.arange(6)
    util = np.clip(level[:, None] + trend[:, None] * months + rng.normal(0, 0.05, (n, 6)), 0, 1.4)
    late = rng.poisson(0.25 + 1.6 * level * (dti > 0.35) + 0.5 * (employment == "unemployed"))
    lines = rng.poisson(3 + years / 6)
    home = rng.choice(_HOME, n, p=[0.38, 0.37, 0.17, 0.08])
    purpose = rng.choice(_PURPOSE, n, p=[0.25, 0.2, 0.25, 0.1, 0.08, 0.12])
    loan = np.round(np.clip(rng.lognormal(9.2, 0.6, n), 500, 80_000), -1)
    region = rng.choice(_REGION, n)

    z = (
        -3.4
        + 7.0 * np.maximum(dti - 0.25, 0)  # hinge on debt-to-income
        + 0.75 * np.minimum(late, 4)
        + 3.0 * np.maximum(util[:, -1] - 0.7, 0)
        + 18.0 * np.maximum(trend, 0)
        + 1.3 * (employment == "unemployed")
        + 0.6 * (employment == "self_employed") * (years < 2)
        + 0.0016 * (age - 40) ** 2  # U-shape in age
        - 0.5 * (home == "own")
        + 0.7 * (loan / np.maximum(income, 1) > 0.5)
        + 0.4 * (purpose == "debt_consolidation")
        - 0.4 * np.log1p(np.minimum(years, 30)) / np.log(31) * 2
        + rng.normal(0, 0.3, n)
    )
    default = (rng.random(n) < _sigmoid(z)).astype(np.int64)

    # data-quality realism: missing values and a few gross outliers
    income_obs = income.round(0)
    income_obs[rng.random(n) < 0.03] = np.nan
    income_obs[rng.random(n) < 0.002] = 9_999_999.0  # keyed-in placeholders
    years_obs = years.copy()
    years_obs[rng.random(n) < 0.05] = np.nan
    util_obs = util.round(4)
    util_obs[rng.random((n, 6)) < 0.01] = np.nan

    first = rng.choice(_FIRST, n)
    last = rng.choice(_LAST, n)
    ids = rng.permutation(np.arange(100_000, 100_000 + n))
    columns: dict[str, pa.Array | np.ndarray | list[str]] = {
        "applicant_id": ids,
        "full_name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
        "email": [
            f"{a.lower()}.{b.lower()}{i % 997}@example.com"
            for a, b, i in zip(first, last, ids, strict=True)
        ],
        "phone": [f"+1-555-{i % 1000:03d}-{(i * 7919) % 10000:04d}" for i in ids],
        "national_id": [
            f"{100 + i % 799:03d}-{10 + (i // 7) % 89:02d}-{1000 + (i * 31) % 8999:04d}"
            for i in ids
        ],
        "age": age.astype(np.int64),
        "employment_type": employment,
        "employment_years": years_obs,
        "annual_income": income_obs,
        "monthly_debt": monthly_debt.round(2),
        "credit_limit": limit,
        "home_ownership": home,
        "loan_purpose": purpose,
        "loan_amount": loan,
        "region": region,
        "num_credit_lines": lines.astype(np.int64),
        "late_payments_12m": late.astype(np.int64),
    }
    for m in range(6):
        columns[f"utilization_m{m + 1}"] = util_obs[:, m]
    columns["default"] = default
    return pa.table(columns)


def write_applicants_csv(path: str | os.PathLike[str], n: int = 20_000, seed: int = 7) -> Path:
    """Write :func:`applicants` to a CSV file and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(applicants(n, seed), out)
    return out


#: Intents of the generated customer-service messages, each with phrasings.
SUPPORT_INTENTS: dict[str, tuple[str, ...]] = {
    "card_lost": (
        "I lost my card",
        "my card was stolen yesterday",
        "I can't find my debit card anywhere",
        "someone took my wallet with the card in it",
        "please block my card, it is missing",
        "my credit card has gone, what do I do",
    ),
    "payment_failed": (
        "my payment was declined",
        "the transfer did not go through",
        "why did my card payment fail at the shop",
        "the direct debit bounced",
        "I tried to pay the bill and it was rejected",
        "online purchase keeps failing at checkout",
    ),
    "loan_question": (
        "what interest rate would I get on a loan",
        "can I borrow money to buy a car",
        "how long does a loan application take",
        "I would like to increase my credit limit",
        "am I eligible for a personal loan",
        "how much can I borrow for home improvements",
    ),
    "fees_complaint": (
        "why was I charged this fee",
        "there is an overdraft charge I don't understand",
        "you took a monthly fee twice",
        "the foreign transaction fee is too high",
        "I want the late payment charge refunded",
        "this account fee was never explained to me",
    ),
    "address_change": (
        "I moved house and need to update my address",
        "please change my postal address",
        "how do I update my home address",
        "my address on file is wrong",
        "I want my statements sent to a new address",
        "new address, where do I change it",
    ),
}
_OPENERS = ("", "hi, ", "hello, ", "good morning, ", "hey there, ", "excuse me, ", "please help: ")
_CLOSERS = ("", " thanks", " thank you", " asap", " please", " - urgent", " cheers")


def support_messages(n: int = 600, seed: int = 11) -> pa.Table:
    """Customer-service messages (``message``) with their intent (``intent``) and an id.

    Each message is one of a few phrasings per intent with a random opener,
    closer and sometimes a typo, so that a model has to generalise a little.
    """
    rng = np.random.default_rng(seed)
    intents = list(SUPPORT_INTENTS)
    rows_id, rows_text, rows_intent = [], [], []
    for i in range(n):
        intent = intents[i % len(intents)]
        phrase = str(rng.choice(SUPPORT_INTENTS[intent]))
        if rng.random() < 0.2:  # a dropped letter
            cut = int(rng.integers(1, len(phrase)))
            phrase = phrase[:cut] + phrase[cut + 1 :]
        text = f"{rng.choice(_OPENERS)}{phrase}{rng.choice(_CLOSERS)}".strip()
        rows_id.append(f"M{i:06d}")
        rows_text.append(text[0].upper() + text[1:])
        rows_intent.append(intent)
    return pa.table({"message_id": rows_id, "message": rows_text, "intent": rows_intent})


def support_tickets(n: int = 600, seed: int = 13, *, separator: str = "|") -> pa.Table:
    """Support tickets that raise one, two or three of the support intents each: ``message``,
    and ``intents``, the intents it raises joined by ``separator`` (multi-label data).

    About half the tickets raise one intent, a third two, the rest three, each
    phrased as in :func:`support_messages` and joined by a connective.
    """
    rng = np.random.default_rng(seed)
    intents = list(SUPPORT_INTENTS)
    joins = (". Also, ", " and ", ". Another thing: ", "; ")
    rows_id, rows_text, rows_intents = [], [], []
    for i in range(n):
        count = int(rng.choice([1, 2, 3], p=[0.5, 0.33, 0.17]))
        chosen = [intents[j] for j in rng.choice(len(intents), size=count, replace=False)]
        parts = [str(rng.choice(SUPPORT_INTENTS[name])) for name in chosen]
        text = parts[0]
        for part in parts[1:]:
            text += f"{rng.choice(joins)}{part}"
        text = f"{rng.choice(_OPENERS)}{text}{rng.choice(_CLOSERS)}".strip()
        rows_id.append(f"T{i:06d}")
        rows_text.append(text[0].upper() + text[1:])
        rows_intents.append(separator.join(sorted(chosen)))
    return pa.table({"ticket_id": rows_id, "message": rows_text, "intents": rows_intents})


def write_support_messages_csv(path: str | os.PathLike[str], n: int = 600, seed: int = 11) -> Path:
    """Write :func:`support_messages` to a CSV file; return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(support_messages(n, seed), out)
    return out
