"""Query types of the simulator: the built-in domains, the query record and template texts.

Every domain of :data:`DOMAINS` names a query type with its specialist (name, role, profile)
and a few question templates whose slots are filled at random by :func:`_template_query`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DOMAINS", "SimQuery"]

# Built-in domains: specialist role/profile and query templates (slots filled at random).
DOMAINS: dict[str, dict[str, Any]] = {
    "math": {
        "name": "math_solver",
        "role": "Math Solver",
        "profile": "You solve arithmetic and algebra word problems step by step, checking every "
        "calculation with numbers, fractions, percentages and units.",
        "templates": [
            "{who} has {a} {item} and buys {b} more packs of {c}. How many {item} does {who} have now?",
            "A shop sells {item} at ${a} each. {who} buys {b} and pays with ${d}. How much change is left?",
            "{who} reads {a} pages a day for {b} days, then {c} pages on the last day. How many pages in total?",
            "A train travels {a} km per hour for {b} hours and then {c} km more. What is the total distance?",
            "What is {a} percent of {d}, plus {b} times {c}?",
            "{who} splits {d} {item} equally among {b} friends and keeps the remainder. How many does each friend get?",
            "Solve for x: {a}x + {b} = {d}. Give x as a fraction if needed.",
        ],
        "slots": {"item": ["apples", "marbles", "stickers", "eggs", "pencils", "cookies"]},
    },
    "law": {
        "name": "legal_expert",
        "role": "Legal Expert",
        "profile": "You are a lawyer who analyses contracts, statutes, liability, company law, "
        "criminal procedure and constitutional rights.",
        "templates": [
            "Under contract law, is a promise by {who} to sell a {thing} enforceable without consideration?",
            "Which statute governs the disqualification of company directors after {event}?",
            "Can {who} sue the landlord for negligence after {event} in the rented {thing}?",
            "Is a verbal agreement to transfer a {thing} valid under the statute of frauds?",
            "What defence can {who} raise against a charge of theft of a {thing} after {event}?",
            "Does the court have jurisdiction over a dispute about a {thing} signed in another state?",
        ],
        "slots": {
            "thing": ["house", "car", "patent", "warehouse", "shareholding", "boat"],
            "event": [
                "an insolvency",
                "a fraud investigation",
                "a fire",
                "a flood",
                "a breach of duty",
            ],
        },
    },
    "code": {
        "name": "programmer",
        "role": "Programming Expert",
        "profile": "You write and debug Python functions: algorithms, string processing, lists, "
        "dictionaries, recursion and unit tests.",
        "templates": [
            "Write a Python function that returns the {op} of a list of integers.",
            'def {fn}(xs: list[int]) -> int:\n    """Return the {op} of xs."""',
            "Fix the bug in this function that should compute the {op} of a string's characters.",
            "Implement a Python function {fn}(s: str) that checks whether s is a {pattern}.",
            "Write a recursive Python function {fn}(n) that computes the {op} of the first n numbers.",
            "Given a dictionary of lists, write Python code returning the key whose list has the largest {op}.",
        ],
        "slots": {
            "op": [
                "sum",
                "maximum",
                "median",
                "product",
                "running total",
                "number of distinct values",
            ],
            "fn": ["solve", "compute", "helper", "count_items", "process"],
            "pattern": ["palindrome", "valid email", "balanced bracket string", "hex number"],
        },
    },
    "medicine": {
        "name": "physician",
        "role": "Physician",
        "profile": "You are a medical doctor who diagnoses symptoms, explains anatomy, "
        "pharmacology, dosages and treatment guidelines.",
        "templates": [
            "A patient presents with {symptom} and {symptom2}. What is the most likely diagnosis?",
            "Which drug class is first-line treatment for a patient with {disease}?",
            "What is the main side effect of long-term {drug} therapy?",
            "Which organ is primarily affected in {disease}, and what test confirms it?",
            "A {age}-year-old has {symptom} after starting {drug}. What should the doctor do?",
        ],
        "slots": {
            "symptom": ["fever", "chest pain", "shortness of breath", "jaundice", "a rash"],
            "symptom2": ["fatigue", "weight loss", "headache", "joint pain"],
            "disease": ["hypertension", "type 2 diabetes", "asthma", "hepatitis B"],
            "drug": ["corticosteroid", "statin", "warfarin", "metformin"],
        },
    },
    "history": {
        "name": "historian",
        "role": "Historian",
        "profile": "You are a historian of wars, empires, revolutions, treaties and the people "
        "and dates that shaped them.",
        "templates": [
            "Which treaty ended the war between {empire} and its neighbours in the {century} century?",
            "Who led {empire} during its expansion in the {century} century?",
            "What was the main cause of the revolution in {empire} in the {century} century?",
            "Which city was the capital of {empire} at the height of its power?",
            "Why did the trade routes of {empire} decline after the {century} century?",
        ],
        "slots": {
            "empire": [
                "the Ottoman Empire",
                "Rome",
                "the Mughal Empire",
                "France",
                "the Ming dynasty",
            ],
            "century": ["12th", "15th", "17th", "18th", "19th"],
        },
    },
    "physics": {
        "name": "physicist",
        "role": "Physicist",
        "profile": "You are a physicist who solves problems in mechanics, electricity, optics, "
        "thermodynamics and energy conservation.",
        "templates": [
            "A ball of mass {a} kg is dropped from {b} m. What is its speed just before impact?",
            "What current flows through a {a} ohm resistor connected to a {b} V battery?",
            "A lens has focal length {a} cm; where is the image of an object {b} cm away?",
            "How much heat is needed to warm {a} kg of water by {b} degrees Celsius?",
            "A car accelerates from rest at {a} m/s^2 for {b} s. How far does it travel?",
        ],
        "slots": {},
    },
}

_NAMES = ["Ava", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia"]


@dataclass(frozen=True)
class SimQuery:
    """A simulated query: its text, latent type, correct answer and trap answer.

    The environment registers queries by text, so evaluators and backends that only see the text
    recover the truth with its ``lookup`` method.

    Attributes
    ----------
    text : str
    qtype : int
        Index of the query type (into the environment's ``type_names``).
    answer, trap : str
        The correct option and the plausible wrong one every wrong agent gives.
    qid : int
        Position in the environment's registry (``-1`` for an unregistered text).
    """

    text: str
    qtype: int
    answer: str
    trap: str
    qid: int


def _template_query(domain: str, rng: np.random.Generator) -> str:
    """A random question text of a domain (a generic text for a type without templates).

    Parameters
    ----------
    domain : str
        Query type name; a key of :data:`DOMAINS` or a user-named type.
    rng : numpy.random.Generator
        Draws the template and its slot values.

    Returns
    -------
    str
    """
    spec = DOMAINS.get(domain)
    if spec is None:  # a user-named type without built-in templates
        return f"A {domain} question (case {int(rng.integers(10**6))}): which option is correct?"
    tpl = spec["templates"][int(rng.integers(len(spec["templates"])))]
    values: dict[str, Any] = {
        "who": _NAMES[int(rng.integers(len(_NAMES)))],
        "a": int(rng.integers(2, 60)),
        "b": int(rng.integers(2, 30)),
        "c": int(rng.integers(2, 20)),
        "d": int(rng.integers(60, 500)),
        "age": int(rng.integers(20, 85)),
    }
    for slot, choices in spec["slots"].items():
        values[slot] = choices[int(rng.integers(len(choices)))]
    return tpl.format(**values)
