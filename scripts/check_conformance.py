#!/usr/bin/python3
"""Check an ONNX conformance run against the list of tests that must pass.

Usage: check_conformance.py RESULTS.json EXPECTED_PASS.txt [--update]

RESULTS.json is what `qkv test DIR --json FILE` writes:
    {"tests": [{"name": "test_abs", "status": "pass"|"fail"|"unsupported"|"error", ...}, ...]}
EXPECTED_PASS.txt has one test name per line; blank lines and '#' comments
(whole-line or trailing) are ignored.  A missing file counts as empty (warning).

Exit 1, listing them, if any expected test did not pass (a regression: it
failed, errored, was unsupported, or is absent from the results).  Tests that
pass but are not listed yet are printed with a hint to add them; they do not
fail the check.  --update rewrites EXPECTED_PASS.txt as the sorted list of the
tests that pass now (keeping the file's leading comment block).
Exit 2 on unreadable or malformed input.
"""

import argparse
import json
import os
import sys

STATUSES = ("pass", "fail", "unsupported", "error")
PROG = "check_conformance"


def die(msg):
    print("%s: ERROR: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(2)


def load_results(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        die("cannot read %s: %s" % (path, e))
    except ValueError as e:
        die("%s is not valid JSON: %s" % (path, e))
    tests = doc.get("tests") if isinstance(doc, dict) else None
    if not isinstance(tests, list):
        die('%s: expected an object with a "tests" list' % path)
    results = {}
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            die("%s: tests[%d] has no string \"name\"" % (path, i))
        status = t.get("status")
        if status not in STATUSES:
            die("%s: test %s has status %r (want one of %s)"
                % (path, t["name"], status, ", ".join(STATUSES)))
        if t["name"] in results:
            print("%s: WARNING: %s appears twice in %s; using the last entry"
                  % (PROG, t["name"], path), file=sys.stderr)
        results[t["name"]] = t
    return results


def load_expected(path):
    """Return (names in file order, header comment lines) or ([], []) if missing."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        print("%s: WARNING: %s does not exist; treating it as empty" % (PROG, path),
              file=sys.stderr)
        return [], []
    except OSError as e:
        die("cannot read %s: %s" % (path, e))
    names, header, in_header = [], [], True
    for line in lines:
        if in_header and (line.startswith("#") or not line.strip()):
            header.append(line)
            continue
        in_header = False
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names, header


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="JSON written by `qkv test --json`")
    ap.add_argument("expected", help="file listing the tests that must pass")
    ap.add_argument("--update", action="store_true",
                    help="rewrite EXPECTED as the list of tests passing now")
    args = ap.parse_args(argv)

    results = load_results(args.results)
    expected, header = load_expected(args.expected)
    expected_set = set(expected)

    counts = {s: 0 for s in STATUSES}
    for t in results.values():
        counts[t["status"]] += 1
    passing = sorted(n for n, t in results.items() if t["status"] == "pass")

    regressions = []
    for name in sorted(expected_set):
        t = results.get(name)
        if t is None:
            regressions.append((name, "missing from the results"))
        elif t["status"] != "pass":
            why = t["status"]
            detail = t.get("message") or t.get("reason") or t.get("error")
            if isinstance(detail, str) and detail:
                why += ": " + detail.splitlines()[0][:200]
            regressions.append((name, why))
    new = [n for n in passing if n not in expected_set]

    total = len(results)
    print("%s: %d/%d pass (fail %d, unsupported %d, error %d); %d expected, "
          "%d regression(s), %d newly passing"
          % (PROG, counts["pass"], total, counts["fail"], counts["unsupported"],
             counts["error"], len(expected_set), len(regressions), len(new)))

    if new and not args.update:
        print("%s: %d test(s) pass but are not in %s -- add them so they stay passing:"
              % (PROG, len(new), args.expected))
        for name in new:
            print("    %s" % name)
        print("%s: hint: %s %s %s --update   (rewrites the list)"
              % (PROG, sys.argv[0], args.results, args.expected))

    if args.update:
        if regressions:
            print("%s: --update drops %d test(s) that no longer pass"
                  % (PROG, len(regressions)))
        if not header:
            header = ["# ONNX backend node tests that must pass (one name per line).",
                      "# Generated by scripts/check_conformance.py --update; edit freely."]
        os.makedirs(os.path.dirname(os.path.abspath(args.expected)), exist_ok=True)
        with open(args.expected, "w") as f:
            f.write("\n".join(header + passing) + "\n")
        print("%s: wrote %d test name(s) to %s" % (PROG, len(passing), args.expected))
        return 0

    if regressions:
        print("%s: FAILED: %d expected test(s) did not pass:" % (PROG, len(regressions)))
        for name, why in regressions:
            print("    %s  (%s)" % (name, why))
        return 1
    print("%s: OK: all %d expected test(s) pass" % (PROG, len(expected_set)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
