"""Generate projects/contact_extraction/data.jsonl: 240 messages with a sender's contact details.

Deterministic: ``python projects/contact_extraction/generate_data.py`` rewrites data.jsonl byte
for byte. ``--out PATH`` writes elsewhere (the tests regenerate into a temporary folder).

The messages read like a shared sales/support inbox: email signatures, voicemail transcripts,
web-form submissions, forwarded mail, chat messages. A pool of 60 contacts writes them, so
each contact appears about four times (as repeat senders do), each time in a different
template and sometimes with a different phone number (work vs mobile) or without one. Many
messages also name a second person (the recipient, a colleague in cc) who is NOT the sender.
Missing fields are labelled ``none``.

Labels: ``name`` (sender's full name as written), ``email``, ``phone`` (as written in the text).
A nearest-neighbour copier is right when the most similar demo comes from the same sender and
wrong (about zero) otherwise: the signal grows with the number of demos.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 7041
N_EXAMPLES = 240
N_CONTACTS = 60
DATA_PATH = Path(__file__).with_name("data.jsonl")

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Olga",
    "Carlos",
    "Priya",
    "Tom",
    "Fatima",
    "Lukas",
    "Sofia",
    "Kenji",
    "Amara",
    "Daniel",
    "Ingrid",
    "Mateo",
    "Chloe",
    "Ravi",
    "Hannah",
    "Omar",
    "Elena",
    "Tariq",
    "Grace",
    "Sven",
    "Nadia",
    "Leo",
    "Yuki",
    "Bianca",
    "Kwame",
    "Zoe",
]
LAST = [
    "Lopez",
    "Okafor",
    "Chen",
    "Novak",
    "Schmidt",
    "Patel",
    "Nguyen",
    "Rossi",
    "Haddad",
    "Kowalski",
    "Anderson",
    "Tanaka",
    "Mensah",
    "Fischer",
    "Silva",
    "Dubois",
    "Larsen",
    "Moreau",
    "Khan",
    "Walsh",
    "Ibrahim",
    "Costa",
    "Bauer",
    "Park",
    "Ferreira",
    "O'Brien",
    "Yilmaz",
    "Varga",
    "Adeyemi",
    "Lindqvist",
]
COMPANIES = [
    ("Acme Logistics", "acme-logistics.com"),
    ("Bluefin Analytics", "bluefin.io"),
    ("Northwind Traders", "northwind.co"),
    ("Helios Energy", "helios-energy.net"),
    ("Pinecrest Dental", "pinecrestdental.com"),
    ("Quanta Robotics", "quantarobotics.ai"),
    ("Riverbend Realty", "riverbend.realty"),
    ("Sable & Finch LLP", "sablefinch.law"),
    ("Tidewater Foods", "tidewaterfoods.com"),
    ("Umbra Studios", "umbrastudios.tv"),
]
FREEMAIL = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "fastmail.fm"]
AREA = ["212", "312", "415", "503", "617", "646", "702", "737", "801", "919"]
PHONE_FORMATS = [
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "+1-{a}-{b}-{c}",
    "{a} {b} {c}",
]
RECIPIENTS = ["Sam", "Alex", "Jordan", "Taylor", "Morgan", "Chris", "Pat", "Robin"]
TOPICS = [
    "the quote you sent",
    "our order #{num}",
    "the invoice from March",
    "the demo next Tuesday",
    "the open position",
    "the lease renewal",
    "my appointment on Thursday",
    "the delayed shipment",
    "the partnership proposal",
    "the warranty claim",
]

# Templates; {name} {email} {phone} {first} {company} {to} {cc} {topic}. "phone"/"email" mark the
# templates that can show that field (others render it as absent).
TEMPLATES: list[tuple[set[str], str]] = [
    (
        {"email", "phone"},
        "Hi {to}, this is {name} from {company} about {topic}. You can reach me at {email} or call {phone}.",
    ),
    (
        {"email", "phone"},
        "Hello,\nFollowing up on {topic}.\n\nBest regards,\n{name}\n{company}\n{email} | {phone}",
    ),
    (
        {"phone"},
        "Voicemail transcript: hey {to}, it's {name}, calling about {topic}. Call me back on {phone} when you get a chance, thanks.",
    ),
    (
        {"email", "phone"},
        "Web form submission\nName: {name}\nEmail: {email}\nPhone: {phone}\nMessage: question about {topic}",
    ),
    (
        {"email"},
        "---------- Forwarded message ----------\nFrom: {name} <{email}>\nTo: {to}\nSubject: Re: {topic}\n\nPlease see below and let me know.",
    ),
    (
        {"email", "phone"},
        "{to}, I'm cc'ing {cc} here. I'm {name} and I handle {topic} on our side; email {email}, mobile {phone}.",
    ),
    ({"email"}, "Chat: [{name}] hi! quick one about {topic}, can you send the details to {email}? thx"),
    (
        {"email", "phone"},
        "Per {cc}'s suggestion I'm writing about {topic}. My name is {name} ({company}). Best way to contact me: {phone} (cell), or by email at {email}.",
    ),
    (
        {"phone"},
        "Note from front desk: {name} stopped by regarding {topic}. Wants a call back at {phone}. Did not leave an email.",
    ),
    ({"email", "phone"}, "Thanks {to}!\n\n--\n{name}\n{company}\nT: {phone}\nE: {email}"),
    ({"email"}, "Dear {to},\nI would like to discuss {topic}. Please reply to {email}.\nSincerely,\n{name}"),
    (
        {"email", "phone"},
        "Hey it's {first} ({name}, {company}) - re {topic}: text or call {phone}, or drop a line to {email}. {cc} has the background.",
    ),
]


def _phone(rng: random.Random) -> str:
    a, b, c = rng.choice(AREA), f"{rng.randint(200, 989)}", f"{rng.randint(0, 9999):04d}"
    return rng.choice(PHONE_FORMATS).format(a=a, b=b, c=c)


def _contacts(rng: random.Random) -> list[dict[str, object]]:
    contacts, used = [], set()
    while len(contacts) < N_CONTACTS:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if (first, last) in used:
            continue
        used.add((first, last))
        company, domain = rng.choice(COMPANIES)
        user = rng.choice(
            [f"{first}.{last}", f"{first[0]}{last}", f"{first}", f"{first}_{last}{rng.randint(1, 99)}"]
        )
        user = user.lower().replace("'", "")
        domain = domain if rng.random() < 0.6 else rng.choice(FREEMAIL)
        phones = [_phone(rng)] + ([_phone(rng)] if rng.random() < 0.3 else [])
        contacts.append(
            {
                "first": first,
                "name": f"{first} {last}",
                "company": company,
                "email": f"{user}@{domain}",
                "phones": phones,
            }
        )
    return contacts


def generate(n: int = N_EXAMPLES, seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    contacts = _contacts(rng)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < n:
        person = contacts[len(rows) % N_CONTACTS] if len(rows) < 2 * N_CONTACTS else rng.choice(contacts)
        shows, template = rng.choice(TEMPLATES)
        to, cc = rng.sample(RECIPIENTS, 2)
        phone = rng.choice(person["phones"])
        text = template.format(
            name=person["name"],
            first=person["first"],
            company=person["company"],
            email=person["email"],
            phone=phone,
            to=to,
            cc=f"{cc} {rng.choice(LAST)}",
            topic=rng.choice(TOPICS).format(num=rng.randint(1000, 9999)),
        )
        if text in seen:
            continue
        seen.add(text)
        rows.append(
            {
                "text": text,
                "name": person["name"],
                "email": person["email"] if "email" in shows else "none",
                "phone": phone if "phone" in shows else "none",
            }
        )
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DATA_PATH, help="where to write (default: data.jsonl here)"
    )
    args = parser.parse_args(argv)
    rows = generate()
    write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} examples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
