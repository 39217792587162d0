#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a circle.

Reads `use crate::…`, `use super::…` and inline `crate::…`/`super::…` paths
(and a `mod.rs` naming its children) of every non-test line under each
src/ folder given, builds the graph of files, and prints every strongly
connected component of more than one file. Layers without circles are the
operator's and the scanner's architecture (see operator/src/lib.rs).

usage: scripts/check-layers.py operator/src action/src
"""

import os
import re
import sys


def modules(root):
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if parts and parts[0] == "bin":
                continue
            found[tuple(parts)] = path
    return found


def code_of(path):
    text = open(path, encoding="utf-8").read()
    cut = text.find("#[cfg(test)]")
    text = text if cut < 0 else text[:cut]
    return re.sub(r"//[^\n]*", "", text)


def expand(prefix, text, out):
    text = text.strip()
    group = re.match(r"^([\w:]*?)\{(.*)\}$", text, re.S)
    if not group:
        out.append(prefix + text.split(" as ")[0])
        return
    depth, part, parts = 0, "", []
    for ch in group.group(2):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    for p in parts:
        if p.strip():
            expand(prefix + group.group(1), p, out)


def resolve(mods, current, path):
    parts = [p for p in path.split("::") if p]
    if not parts:
        return None
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] in ("super", "self"):
        base = list(current)
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
        if parts and parts[0] == "self":
            parts = parts[1:]
    else:
        return None
    full = base + parts
    for n in range(len(full), 0, -1):
        if tuple(full[:n]) in mods:
            return tuple(full[:n])
    return None


def graph(root):
    mods = modules(root)
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        code = code_of(path)
        refs = []
        for use in re.finditer(r"\buse\s+((?:crate|super|self)[^;]*);", code, re.S):
            expand("", re.sub(r"\s+", "", use.group(1)), refs)
        refs += re.findall(r"\b((?:crate|super)(?:::\w+)+)", code)
        for child in (k for k in mods if len(k) == len(m) + 1 and k[: len(m)] == m):
            if re.search(r"(?<![\w:])" + child[-1] + r"::", code):
                refs.append("self::" + child[-1])
        for r in refs:
            target = resolve(mods, m, r)
            if target is not None and target != m:
                edges[m].add(target)
    return edges


def circles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return found


def main(roots):
    failed = False
    for root in roots:
        edges = graph(root)
        for component in circles(edges):
            failed = True
            names = {"/".join(m) or "lib" for m in component}
            print(f"{root}: import circle through {len(names)} modules:", file=sys.stderr)
            for m in sorted(component):
                inside = sorted("/".join(t) for t in edges[m] if t in component)
                print(f"  {'/'.join(m)} -> {', '.join(inside)}", file=sys.stderr)
        if not failed:
            print(f"{root}: {len(edges)} modules, no import circle")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["operator/src", "action/src"]))
