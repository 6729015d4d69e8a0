"""Generate projects/sentiment/data.jsonl: 240 short product and service reviews.

Deterministic: ``python projects/sentiment/generate_data.py`` rewrites data.jsonl byte for byte.
``--out PATH`` writes elsewhere (the tests regenerate into a temporary folder and compare).

The reviews are built from templates x vocabulary over five domains. The label is not given
away by one word: there are negations ("was not great at all"), contrasts where the clause
after "but" decides ("the staff were lovely, but the room was filthy"), expectation reversals
("I expected it to be awful, but it worked flawlessly") and sarcasm ("Oh great, it broke
again"). A nearest-neighbour copier therefore gets a real but imperfect signal.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240601
N_EXAMPLES = 240
DATA_PATH = Path(__file__).with_name("data.jsonl")

DOMAINS: dict[str, dict[str, list[str]]] = {
    "restaurant": {
        "items": [
            "the pasta",
            "the ramen",
            "the fish tacos",
            "our waiter",
            "the brunch menu",
            "the dessert",
            "the curry",
            "the wine list",
            "the pizza",
            "the service",
        ],
        "openers": [
            "We went there for my birthday.",
            "Stopped by after work on Friday.",
            "Came here with a group of six.",
            "Ordered takeout last night.",
            "",
        ],
    },
    "electronics": {
        "items": [
            "these headphones",
            "the laptop",
            "the phone charger",
            "this smart watch",
            "the battery",
            "the touchscreen",
            "the bluetooth speaker",
            "the keyboard",
            "the webcam",
            "the router",
        ],
        "openers": [
            "Bought this for my sister.",
            "I have used it daily for a month.",
            "Replaced my old one with this.",
            "Arrived two days after ordering.",
            "",
        ],
    },
    "hotel": {
        "items": [
            "the room",
            "the front desk staff",
            "the breakfast buffet",
            "the pool",
            "the location",
            "the bed",
            "the shower",
            "the housekeeping",
            "the rooftop bar",
            "the check-in",
        ],
        "openers": [
            "Stayed three nights for a conference.",
            "We booked this for our anniversary.",
            "Spent a weekend here with the kids.",
            "Booked last minute through an app.",
            "",
        ],
    },
    "movie": {
        "items": [
            "the plot",
            "the acting",
            "the ending",
            "the soundtrack",
            "the lead actor",
            "the dialogue",
            "the special effects",
            "the pacing",
            "the sequel",
            "the cinematography",
        ],
        "openers": [
            "Watched it on opening night.",
            "Streamed it with friends on Saturday.",
            "My partner picked this one.",
            "Saw it in IMAX.",
            "",
        ],
    },
    "app": {
        "items": [
            "the delivery app",
            "customer support",
            "the checkout flow",
            "the latest update",
            "the subscription",
            "the mobile app",
            "the refund process",
            "the search feature",
            "the onboarding",
            "the notifications",
        ],
        "openers": [
            "Been a subscriber for a year.",
            "Tried it after a friend recommended it.",
            "Using it on both my phone and tablet.",
            "Signed up during the spring sale.",
            "",
        ],
    },
}

POS_ADJ = [
    "excellent",
    "wonderful",
    "great",
    "fantastic",
    "superb",
    "delightful",
    "reliable",
    "impressive",
    "lovely",
    "outstanding",
    "solid",
    "charming",
]
NEG_ADJ = [
    "terrible",
    "awful",
    "disappointing",
    "mediocre",
    "broken",
    "a letdown",
    "bland",
    "flimsy",
    "overpriced",
    "useless",
    "sloppy",
    "frustrating",
]
POS_VP = [
    "exceeded my expectations",
    "worked flawlessly",
    "made my week",
    "was worth every penny",
    "won me over",
    "kept everyone happy",
    "felt like a real treat",
    "did exactly what it promised",
]
NEG_VP = [
    "fell apart within a week",
    "stopped working",
    "ruined the evening",
    "was a waste of money",
    "let us down",
    "left everyone annoyed",
    "felt like a cheap knockoff",
    "never did what it promised",
]
POS_CLOSE = [
    "Worth it.",
    "Highly recommended.",
    "I'm already telling friends.",
    "Five stars from me.",
    "Would happily pay again.",
    "",
]
NEG_CLOSE = [
    "Never again.",
    "I asked for a refund.",
    "Save your money.",
    "One star, and that is generous.",
    "Would not pay for it again.",
    "",
]

# (label, template). Placeholders: {item} {item2} {pos} {neg} {pos_vp} {neg_vp}
TEMPLATES: list[tuple[str, str]] = [
    ("positive", "{Item} was {pos}."),
    ("negative", "{Item} was {neg}."),
    ("positive", "Honestly, {item} {pos_vp}."),
    ("negative", "Honestly, {item} {neg_vp}."),
    ("positive", "I expected {item} to be {neg}, but it {pos_vp}."),
    ("negative", "I expected {item} to be {pos}, but it {neg_vp}."),
    ("negative", "{Item} was not {pos} at all."),
    ("positive", "{Item} was not {neg} at all, quite the opposite."),
    ("negative", "{Item} was {pos}, but {item2} was {neg} and that spoiled it."),
    ("positive", "{Item} was {neg}, but {item2} {pos_vp}, so overall I'm happy."),
    ("positive", "Would I recommend {item}? Absolutely, it {pos_vp}."),
    ("negative", "Would I recommend {item}? No, it {neg_vp}."),
    ("negative", "Oh {pos}, {item} {neg_vp} again. Just what I needed."),
    ("positive", "Reviews said {item} was {neg}; they were wrong, it {pos_vp}."),
    ("negative", "Everyone raved that {item} was {pos}. I disagree: it {neg_vp}."),
    ("positive", "Can't complain: {item} was {pos} and {item2} {pos_vp}."),
    ("negative", "Between {item} and {item2}, nothing was {pos}; both were {neg}."),
]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate(n: int = N_EXAMPLES, seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    by_label = {lab: [t for lbl, t in TEMPLATES if lbl == lab] for lab in ("positive", "negative")}
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    domains = sorted(DOMAINS)
    while len(rows) < n:
        label = "positive" if len(rows) % 2 == 0 else "negative"
        template = rng.choice(by_label[label])
        domain = DOMAINS[rng.choice(domains)]
        item, item2 = rng.sample(domain["items"], 2)
        body = template.format(
            item=item,
            Item=_cap(item),
            item2=item2,
            pos=rng.choice(POS_ADJ),
            neg=rng.choice(NEG_ADJ),
            pos_vp=rng.choice(POS_VP),
            neg_vp=rng.choice(NEG_VP),
        )
        close = rng.choice(POS_CLOSE if label == "positive" else NEG_CLOSE) if rng.random() < 0.5 else ""
        text = " ".join(part for part in (rng.choice(domain["openers"]), body, close) if part)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "sentiment": label})
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
