#!/usr/bin/env python3
"""Fails when a non-test function in the given source trees is longer than
LIMIT lines: the operator's and the scanner's functions fit on one screen,
pure decisions apart from effects (see CONTRIBUTING: style).

Braces inside string, raw string and character literals and comments are
not counted."""
import os
import re
import sys

LIMIT = 60
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')
LITERALS = re.compile(
    r'r(#*)".*?"\1'          # raw strings (one line)
    r'|"(?:\\.|[^"\\])*"'    # strings
    r"|b?'(?:\\.|[^'\\])'"   # characters and bytes
    r'|//.*$'                # line comments
)


def code_only(line):
    return LITERALS.sub('""', line)


def long_functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    end = next((i for i, l in enumerate(lines) if l.strip() == '#[cfg(test)]'), len(lines))
    i = 0
    while i < end:
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < end:
            code = code_only(lines[j])
            depth += code.count('{') - code.count('}')
            started = started or '{' in code
            if started and depth <= 0:
                break
            if not started and code.rstrip().endswith(';'):
                break
            j += 1
        if started and j - i + 1 > LIMIT:
            yield j - i + 1, i + 1, m.group(6)
        i = j + 1 if started else i + 1


def main(roots):
    found = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith('.rs'):
                    p = os.path.join(dirpath, f)
                    found += [(n, p, line, name) for n, line, name in long_functions(p)]
    for n, p, line, name in sorted(found, reverse=True):
        print(f'{p}:{line}: fn {name} is {n} lines (limit {LIMIT}): split it', file=sys.stderr)
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
