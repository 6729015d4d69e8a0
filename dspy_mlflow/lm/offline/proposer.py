"""The offline model as an optimizer's proposer: new instructions written as rules (:mod:`.rules`).

An optimizer's meta-prompt is recognised by its signature's fields, not its wording:

========================  ====================================  ===============================
asks for                  from                                  who asks
========================  ====================================  ===============================
``observations``          ``examples`` (+ ``prior_observations``)  MIPROv2's dataset summary
``summary``               ``observations``                      MIPROv2's summary of it
``proposed_instruction``  ``basic_instruction`` (+ ``dataset_description``,  MIPROv2, COPRO
                          ``attempted_instructions``)
``new_instruction``       ``current_instruction``, ``examples_with_feedback``  GEPA's reflection
``module_advice``         ``program_inputs``, ``oracle_metadata``  SIMBA's rule step
``shortened_instruction``  ``instruction``                      GEPA's compression (kept as is)
========================  ====================================  ===============================

From the examples a prompt shows (inputs with their gold outputs, read from feedback where that
is where the gold is) it writes rules tying words to labels: a word seen only with one label, in
at least two examples when there are six or more, the more examples the earlier. COPRO shows no
examples, so its instruction comes back unchanged (its best attempt when it lists attempts).
Anything else returns None and the learner answers as it always did.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from dspy_mlflow.lm.offline.prompt import Spec
from dspy_mlflow.lm.offline.rules import (
    REASONING_FIELDS,
    Rule,
    normalise,
    occurs,
    parse_rules,
    render,
    rule_sentences,
    without_rules,
)

Doc = tuple[dict[str, Any], dict[str, Any]]  # (inputs, gold outputs)

_STOPWORDS = frozenset(["a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your", "yours", "one", "two", "get", "got"])
_EXAMPLE_RE = re.compile(r"Example\((\{.*?\})\) \(input_keys=(\{.*?\})\)", re.S)
_GOLD_RE = re.compile(r"\bthe (\w+) (?:should be|is) [\"“]([^\"”]*)[\"”]", re.I)
_SCORE_ONE_RE = re.compile(r"\bscore of 1(?:\.0+)?\b|^\s*correct\b", re.I)
_MAX_WORDS = 6


def propose(spec: Spec, fields: Mapping[str, str]) -> dict[str, Any] | None:
    """Output values for an optimizer's meta-prompt, or None when the prompt is not one."""
    inputs = {f.name for f in spec.inputs}
    outputs = {f.name for f in spec.outputs}
    if "observations" in outputs and "examples" in inputs:
        return {"observations": _observations(fields)}
    if "summary" in outputs and "observations" in inputs:
        return {"summary": _summary(fields.get("observations", ""))}
    if "proposed_instruction" in outputs and inputs & {"basic_instruction", "attempted_instructions"}:
        proposal = {"proposed_instruction": _proposed(fields)}
        prefix = _best_attempt(fields.get("attempted_instructions", ""), "Prefix")
        if "proposed_prefix_for_output_field" in outputs and prefix:
            proposal["proposed_prefix_for_output_field"] = prefix  # COPRO: the best attempt's prefix kept
        return proposal
    if "new_instruction" in outputs and "current_instruction" in inputs:
        return {"new_instruction": _reflected(fields)}
    if "module_advice" in outputs and "program_inputs" in inputs:
        return _advice(fields)
    if "shortened_instruction" in outputs and "instruction" in inputs:
        return {"shortened_instruction": fields.get("instruction", "")}  # GEPA's compression: rules kept
    return None


def _observations(fields: Mapping[str, str]) -> str:
    """One batch of MIPROv2's examples: its rules (DSPy concatenates them; the summary reconciles)."""
    found = render([rule for _, rule in evidence(_examples(fields.get("examples", "")))])
    if found:
        return " ".join(found)
    return "COMPLETE" if "prior_observations" in fields else "No rules found."


def _summary(observations: str) -> str:
    """The rules of all batches reconciled: a word listed with two labels is dropped, a word
    listed by more batches comes first, and when some word recurs the one-batch words go."""
    tally: Counter = Counter()
    values: dict[tuple, set] = defaultdict(set)
    first: dict[tuple, int] = {}
    for rule in parse_rules(observations):
        for phrase in rule.phrases:
            key = (phrase, rule.output_field, rule.input_field)
            tally[key, rule.value] += 1
            values[key].add(rule.value)
            first.setdefault(key, len(first))
    kept = [(n, first[key], key, value) for (key, value), n in tally.items() if len(values[key]) == 1]
    if any(n > 1 for n, *_ in kept):
        kept = [k for k in kept if k[0] > 1]
    kept.sort(key=lambda k: (-k[0], k[1]))
    rules = [Rule((phrase,), value, field, where) for _, _, (phrase, field, where), value in kept]
    return " ".join(render(rules)) or "No rules found."


def _proposed(fields: Mapping[str, str]) -> str:
    base = fields.get("basic_instruction") or _best_attempt(fields.get("attempted_instructions", "")) or ""
    described = [s for s in rule_sentences(fields.get("dataset_description", "")) if s not in base]
    return _joined(base, described)


def _reflected(fields: Mapping[str, str]) -> str:
    """GEPA: drop the words of rules that decided an example wrongly, add rules for the rest."""
    current = fields.get("current_instruction", "")
    raw = fields.get("examples_with_feedback") or fields.get("dataset_with_feedback") or ""
    docs = _feedback_docs(raw)
    kept, dropped = prune(list(parse_rules(current)), docs)
    covered = {p for r in kept for p in r.phrases} | dropped
    new = [rule for _, rule in evidence(docs) if rule.phrases[0] not in covered]
    if not new and len(kept) == len(parse_rules(current)) and not dropped:
        return current
    return _joined(without_rules(current), render(kept + new))


def _advice(fields: Mapping[str, str]) -> dict[str, Any]:
    """SIMBA: advice for one example, from its inputs and gold outputs (``oracle_metadata``)."""
    inputs, labels = _json(fields.get("program_inputs")), _json(fields.get("oracle_metadata"))
    covered = {p for r in parse_rules(fields.get("modules_defn", "")) for p in r.phrases}
    docs = [(inputs, labels)] if isinstance(inputs, dict) and isinstance(labels, dict) else []
    rules = [rule for _, rule in evidence(docs) if rule.phrases[0] not in covered]
    names = _json(fields.get("module_names"))
    names = names if isinstance(names, list) and names else ["self"]
    advice = " ".join(render(rules)) or "Keep following the instructions."
    return {"discussion": f"The better trajectory gives the gold outputs {json.dumps(labels)}.",
            "module_advice": {str(n): advice for n in names}}


def evidence(docs: list[Doc]) -> list[tuple[int, Rule]]:
    """(support, one-word rule) for each word seen with one label only: in two examples or more
    when there are six or more examples, else in one; the best supported first, then the longer
    word, then the earlier seen; at most a few words per label."""
    docs = [(i, g) for i, g in docs if isinstance(i, dict) and isinstance(g, dict) and i and g]
    if not docs:
        return []
    input_names = sorted({k for i, _ in docs for k in i})
    where = input_names[0] if len(input_names) == 1 else None
    min_support = 2 if len(docs) >= 6 else 1
    found: list[tuple[int, int, Rule]] = []
    for field in sorted({k for _, g in docs for k in g if k not in REASONING_FIELDS}):
        labelled = [(_doc_words(i), str(g[field]).strip()) for i, g in docs if _label_like(g.get(field))]
        if not labelled or (len(docs) >= 4 and max(Counter(v for _, v in labelled).values()) < 2):
            continue
        seen: dict[str, Counter] = defaultdict(Counter)
        order: dict[str, int] = {}
        for words, value in labelled:
            for w in words:
                seen[w][value] += 1
                order.setdefault(w, len(order))
        by_value: dict[str, list[str]] = defaultdict(list)
        for w, counts in seen.items():
            ((value, n),) = counts.most_common(1)
            if len(counts) == 1 and n >= min_support:
                by_value[value].append(w)
        for value, words in by_value.items():
            words.sort(key=lambda w: (-seen[w][value], -len(w), order[w]))
            found += [(seen[w][value], order[w], Rule(((w,),), value, field, where)) for w in words[:_MAX_WORDS]]
    found.sort(key=lambda f: (-f[0], f[1]))
    return [(n, rule) for n, _, rule in found]


def prune(rules: list[Rule], docs: list[Doc]) -> tuple[list[Rule], set]:
    """``rules`` without the words that made a rule decide one of ``docs`` wrongly."""
    dropped: set = set()
    for inputs, gold in docs:
        words = normalise(" ".join(str(v) for v in inputs.values()))
        for field, value in gold.items():
            for rule in rules:
                if rule.output_field not in (field, None):
                    continue
                hits = [p for p in rule.phrases if p not in dropped and occurs(p, words)]
                if hits:
                    if rule.value.lower() != str(value).strip().lower():
                        dropped.update(hits)
                    break
    kept = [Rule(tuple(p for p in r.phrases if p not in dropped), r.value, r.output_field, r.input_field)
            for r in rules]
    return [r for r in kept if r.phrases], dropped


def _doc_words(inputs: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for value in inputs.values():
        for w in normalise(str(value)):
            if len(w) > 2 and not w.isdigit() and w not in _STOPWORDS and w not in words:
                words.append(w)
    return words


def _label_like(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) and 0 < len(str(value).split()) <= 3


def _joined(base: str, sentences: list[str]) -> str:
    return (base.rstrip() + "\n" + " ".join(sentences)).strip() if sentences else base


def _best_attempt(attempts: str, part: str = "Instruction") -> str | None:
    """COPRO lists attempts in increasing order of score: the last instruction (or prefix) is the best."""
    found = re.findall(rf"{part} #\d+: (.*?)(?=\n\s*(?:Prefix #|Resulting Score #|Instruction #)|$)",
                       attempts, flags=re.S)
    return found[-1].strip() if found else None


def _examples(text: str) -> list[Doc]:
    """(inputs, labels) of each ``Example({...}) (input_keys={...})`` in a MIPROv2 prompt."""
    docs = []
    for m in _EXAMPLE_RE.finditer(text):
        try:
            values, keys = ast.literal_eval(m.group(1)), ast.literal_eval(m.group(2))
        except (ValueError, SyntaxError):
            continue
        if isinstance(values, dict) and isinstance(keys, (set, frozenset)):
            docs.append(({k: v for k, v in values.items() if k in keys},
                         {k: v for k, v in values.items() if k not in keys}))
    return docs


def _feedback_docs(text: str) -> list[Doc]:
    """(inputs, gold) of each example GEPA shows: gold from its feedback ("the sentiment should be
    "negative""), or its own outputs when the feedback says they scored 1."""
    rows = _json(text)
    docs = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        inputs, outputs = row.get("Inputs"), row.get("Generated Outputs")
        feedback = str(row.get("Feedback", ""))
        gold = {k: v for k, v in _GOLD_RE.findall(feedback) if isinstance(outputs, Mapping) and k in outputs}
        if not gold and _SCORE_ONE_RE.search(feedback) and isinstance(outputs, Mapping):
            gold = dict(outputs)
        if isinstance(inputs, Mapping) and gold:
            docs.append((dict(inputs), gold))
    return docs


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None
