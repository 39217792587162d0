#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a long history of small commits,
the shape of a real project's history (ripgrep's: ~4,500 commits over a
few hundred files), which the crate-per-commit bench repository is not:
there the tree walk is free and every blob is new, here most blobs are
small edits of the one before and the walk over thousands of trees is
what history mode pays first.

Reproducible: the files are the first text files (sorted by path) of a
source tree, every edit comes from a fixed seed.

    scripts/make-long-history.py TREE [COMMITS [LEAKS]] | git -C REPO fast-import --quiet

With LEAKS, that many commits spread over the history each add a file
with an X API key of the right shape (random, never a real one), for
measuring what attributing findings to commits costs.
"""
import os
import random
import sys

MAX_FILE = 64 * 1024


def base_files(tree, count=400):
    """The first `count` UTF-8 files under `tree`, by sorted path."""
    found = []
    for root, dirs, names in os.walk(tree):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            try:
                if os.path.getsize(path) > MAX_FILE:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                data.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found.append((os.path.relpath(path, tree), data.split(b"\n")))
            if len(found) == count:
                return found
    return found


def edit(lines, rng, commit):
    """A small edit: a changed line, an inserted one, or a removed one."""
    at = rng.randrange(max(len(lines), 1))
    what = rng.random()
    if what < 0.5 and lines:
        lines[at] = lines[at] + b" // edited in %d" % commit
    elif what < 0.85:
        lines.insert(at, b"// line added in commit %d" % commit)
    elif len(lines) > 1:
        del lines[at]


def leak(rng, n):
    """A config file holding a random value of an X API key's shape."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    key = "".join(rng.choice(alphabet) for _ in range(25))
    return [b"# service %d" % n, b"TWITTER_CONSUMER_KEY=" + key.encode(), b""]


def blob(out, lines):
    data = b"\n".join(lines)
    out.write(b"data %d\n" % len(data))
    out.write(data)
    out.write(b"\n")


def main():
    tree = sys.argv[1]
    commits = int(sys.argv[2]) if len(sys.argv) > 2 else 4500
    leaks = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    every = commits // leaks if leaks else 0
    rng = random.Random(25)
    secrets = random.Random(79)
    files = dict(base_files(tree))
    paths = sorted(files)
    out = sys.stdout.buffer
    when = 1_600_000_000
    for n in range(commits):
        out.write(b"commit refs/heads/main\n")
        out.write(b"committer bench <bench@localhost> %d +0000\n" % (when + n * 3600))
        message = b"commit %d" % n
        out.write(b"data %d\n%s\n" % (len(message), message))
        if n == 0:
            changed = paths
        else:
            changed = rng.sample(paths, rng.randint(1, 4))
            for path in changed:
                edit(files[path], rng, n)
        for path in changed:
            out.write(b"M 100644 inline %s\n" % path.encode())
            blob(out, files[path])
        if every and n % every == every - 1 and n // every < leaks:
            out.write(b"M 100644 inline config/service-%d.env\n" % n)
            blob(out, leak(secrets, n))
        if n and n % 500 == 0:
            out.write(b"reset refs/tags/v%d\nfrom refs/heads/main\n\n" % (n // 500))
    out.write(b"done\n")


if __name__ == "__main__":
    main()
