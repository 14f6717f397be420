# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmark guest for Debian's /usr/bin/python3: a json / re / sort mix over
the records of a JSON file (written by bench/bench.py). Prints a digest so
that every configuration can be checked to compute the same thing.

usage: python3 pymix.py RECORDS.json"""
import hashlib
import json
import re
import sys

EMAIL = re.compile(r"^([a-z0-9._]+)@([a-z0-9-]+)\.(com|org|net|de|fr)$")
WORD = re.compile(r"\b([a-z]{3,})\b")
DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def main(path):
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    words = {}
    domains = {}
    out = []
    for r in records:
        m = EMAIL.match(r["email"])
        domain = m.group(2) if m else "?"
        domains[domain] = domains.get(domain, 0) + 1
        for w in WORD.findall(r["text"]):
            words[w] = words.get(w, 0) + 1
        y, mo, d = (int(x) for x in DATE.search(r["date"]).groups())
        out.append({
            "id": r["id"],
            "key": "%s/%04d%02d%02d" % (domain, y, mo, d),
            "score": round(r["score"] * 1.5 + len(r["tags"]), 3),
            "tags": sorted(set(t.upper() for t in r["tags"])),
        })
    out.sort(key=lambda o: (o["key"], -o["score"], o["id"]))
    top = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    text = json.dumps({"records": out, "top": top, "domains": sorted(domains.items())},
                      sort_keys=True)
    again = json.loads(text)
    print(len(again["records"]), hashlib.sha256(text.encode()).hexdigest()[:16])


if __name__ == "__main__":
    main(sys.argv[1])
