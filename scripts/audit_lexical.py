#!/usr/bin/env python3
"""A plain, single-threaded lexical leakage audit: the same verdicts as `leakless audit --judge
builtin` (the same lexicon, stemmer and rules), one JSON line per record. It is the anchor the
audit benchmark (`leakless-dev bench-audit`) measures leakless against.

usage: audit_lexical.py LEXICON INPUT.jsonl OUTPUT.jsonl   (records with "query", optionally "description")
"""
import json
import sys

import yaml


def word_char(c):
    return c.isalpha() or c.isnumeric()


def stem(word):
    text = word.lower().replace("\u2019", "'")
    if text.endswith("'s"):
        text = text[:-2]
    n = len(text)
    if n > 4 and text.endswith("ies"):
        text = text[:-3] + "y"
    elif n > 4 and text.endswith("sses"):
        text = text[:-2]
    elif n > 3 and text.endswith("es") and any(text[:-2].endswith(e) for e in ("sh", "ch", "x", "z")):
        text = text[:-2]
    elif n > 3 and text.endswith("s") and not text.endswith(("ss", "us", "is")):
        text = text[:-1]
    elif n > 5 and text.endswith("ing"):
        text = text[:-3]
    elif n > 4 and text.endswith("ed"):
        text = text[:-2]
    if len(text) > 3 and text[-1] == text[-2] and text[-1] not in "lszeo":
        text = text[:-1]
    if len(text) > 3 and text.endswith("e") and not text.endswith("ee"):
        text = text[:-1]
    return text


def tokens(text):
    """(word, stem, start, end) for letters and digits, inner apostrophes and hyphens kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if not word_char(text[i]):
            i += 1
            continue
        start = end = i
        while end < n:
            c = text[end]
            if word_char(c):
                end += 1
            elif c in "'\u2019-" and end + 1 < n and word_char(text[end + 1]):
                end += 1
            else:
                break
        word = text[start:end]
        out.append((word, stem(word), start, end))
        i = end
    return out


class Phrases:
    def __init__(self):
        self.by_first = {}

    def add(self, phrase, tag):
        stems = [t[1] for t in tokens(phrase)]
        if not stems:
            return
        entries = self.by_first.setdefault(stems[0], [])
        entries.append((stems, phrase, tag))
        entries.sort(key=lambda e: -len(e[0]))

    def matches(self, toks):
        result, i = [], 0
        while i < len(toks):
            found = None
            for stems, phrase, tag in self.by_first.get(toks[i][1], []):
                end = i + len(stems)
                if end <= len(toks) and all(s == t[1] for s, t in zip(stems, toks[i:end])):
                    found = (phrase, i, end, tag)
                    break
            if found:
                result.append(found)
                i = found[2]
            else:
                i += 1
        return result


class Lexicon:
    def __init__(self, path):
        with open(path) as f:
            # Every scalar as the string it is written as ("on", "no" are words here, not booleans).
            doc = yaml.load(f, Loader=yaml.BaseLoader)
        self.risk = Phrases()
        for category, terms in doc["risk_terms"].items():
            for term in terms:
                self.risk.add(str(term), category)
        for term in doc.get("intent_terms") or []:
            self.risk.add(str(term), "intent")
        for term in doc.get("benign_terms") or []:
            self.risk.add(str(term), "benign")
        self.reference = Phrases()
        for term in doc["reference_terms"]:
            self.reference.add(str(term), "reference")
        self.request = Phrases()
        for term in doc["request_terms"]:
            self.request.add(str(term), "request")
        self.stop = {stem(str(w)) for w in doc["stop_words"]}

    def content(self, toks):
        refs = {i for m in self.reference.matches(toks) for i in range(m[1], m[2])}
        return [t for i, t in enumerate(toks) if i not in refs and t[1] not in self.stop]


def judge(lexicon, query, description, threshold=1.0, weight=0.25, min_content=2):
    toks = tokens(query)
    risk = [m for m in lexicon.risk.matches(toks) if m[3] != "benign"]
    evidence = [(query[toks[m[1]][2]:toks[m[2] - 1][3]], m[0], m[3]) for m in risk]
    covered = {i for m in risk for i in range(m[1], m[2])}
    content = lexicon.content(toks)
    score = float(len(evidence))
    if description:
        described = {}
        for word, s, _, _ in lexicon.content(tokens(description)):
            described.setdefault(s, word.lower())
        content_starts = {t[2] for t in content}
        for i, t in enumerate(toks):
            if i not in covered and t[1] in described and t[2] in content_starts:
                evidence.append((t[0], described[t[1]], "description"))
                score += weight
    if score >= threshold:
        risky = any(m[3] != "intent" for m in risk)
        intent = any(m[3] == "intent" for m in risk)
        asks = bool(lexicon.request.matches(toks))
        leans = bool(lexicon.reference.matches(toks))
        verdict = "harmful-alone" if (risky or intent) and asks and (intent or not leans) else "leaks"
    elif len(content) < min_content:
        verdict = "meaningless"
    else:
        verdict = "clean"
    return verdict, score, evidence


def main():
    lexicon = Lexicon(sys.argv[1])
    with open(sys.argv[2]) as source, open(sys.argv[3], "w") as out:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            verdict, score, evidence = judge(lexicon, record["query"], record.get("description") or "")
            out.write(json.dumps({"line": number, "verdict": verdict, "score": round(score, 4),
                                  "evidence": [{"span": s, "term": t, "source": k} for s, t, k in evidence]}) + "\n")


if __name__ == "__main__":
    main()
