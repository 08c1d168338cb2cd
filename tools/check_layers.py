#!/usr/bin/env python3
"""Check the include rules between the folders of src/.

Each folder under src/ that holds sources (.c or .h) has a file named
.may_include listing the folders it may include from, one per line, as
they appear in an include ("util", "crypto", "lab/impair"); '#' starts a
comment.  A folder may always include from itself.  Every .c and .h file
under src/ is scanned for #include "..." lines, and these are reported:

  - an include from a folder not listed in the including folder's list;
  - a folder with sources but no .may_include;
  - a module-private header (*_internal.h) included from another folder;
  - a relative include ("../x.h");
  - an include naming a folder (or a bare file) that does not exist;
  - a .may_include line naming a folder that does not exist.

Each problem is printed as "file:line: message"; the exit status is 1 if
there was any.  --graph prints the allowed graph instead, for the docs.
Python 3 standard library only: it runs before anything is built.
"""

import argparse
import os
import re
import sys

RULES = ".may_include"
SOURCE_EXT = (".c", ".h")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]*)"')


def is_internal(header):
    base = os.path.basename(header)
    return base == "internal.h" or base.endswith("_internal.h")


def source_folders(src):
    """Folders (relative to src, '/'-separated) that hold .c or .h files,
    mapped to the sorted list of those files."""
    folders = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = sorted(f for f in filenames if f.endswith(SOURCE_EXT))
        if files:
            rel = os.path.relpath(dirpath, src).replace(os.sep, "/")
            folders[rel] = files
    return folders


def read_rules(src, folder, problems):
    """The folders listed in folder/.may_include, or None if it has none."""
    path = os.path.join(src, folder, RULES)
    if not os.path.isfile(path):
        return None
    allowed = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            name = line.split("#", 1)[0].strip().strip("/")
            if not name:
                continue
            if not os.path.isdir(os.path.join(src, name)):
                problems.append((path, lineno,
                                 'lists folder "%s", which does not exist' % name))
                continue
            allowed.append(name)
    return allowed


def check_file(src, folder, allowed, path, problems):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for lineno, line in enumerate(lines, 1):
        m = INCLUDE_RE.match(line)
        if not m:
            continue
        inc = m.group(1)
        where = (path, lineno)
        if inc.startswith("./") or "../" in inc or inc.startswith("/"):
            problems.append(where + ('relative include "%s": name it from src/, '
                                     'as "DIR/file.h"' % inc,))
            continue
        target = os.path.dirname(inc)
        if not target:
            # A bare name resolves next to the including file first.
            if not os.path.isfile(os.path.join(src, folder, inc)):
                problems.append(where + ('include "%s" names no file in %s/; '
                                         'write "DIR/%s"' % (inc, folder, inc),))
            continue
        if not os.path.isdir(os.path.join(src, target)):
            problems.append(where + ('include "%s" names folder src/%s, which '
                                     'does not exist' % (inc, target),))
            continue
        if target == folder:
            continue
        if is_internal(inc):
            problems.append(where + ('"%s" is private to %s/ and may not be '
                                     'included from %s/' % (inc, target, folder),))
            continue
        if allowed is not None and target not in allowed:
            problems.append(where + ('%s/ may not include from %s/ ("%s"); '
                                     'see src/%s/%s' % (folder, target, inc,
                                                        folder, RULES),))


def check(src):
    """All problems in the tree rooted at src, as (file, line, message)."""
    problems = []
    for folder, files in sorted(source_folders(src).items()):
        rules_path = os.path.join(src, folder, RULES)
        allowed = read_rules(src, folder, problems)
        if allowed is None:
            problems.append((os.path.join(src, folder, files[0]), 1,
                             "folder %s/ has sources but no %s (missing %s)"
                             % (folder, RULES, rules_path)))
        if folder == ".":
            problems.append((os.path.join(src, files[0]), 0,
                             "sources directly in src/ belong in a folder"))
            continue
        for name in files:
            check_file(src, folder, allowed, os.path.join(src, folder, name),
                       problems)
    return problems


def graph(src):
    """The allowed graph as text, lowest folders first."""
    problems = []
    rules = {}
    for folder in sorted(source_folders(src)):
        allowed = read_rules(src, folder, problems)
        rules[folder] = sorted(a for a in (allowed or []) if a != folder)
    # Order by depth of the longest chain below each folder, then by name.
    depth = {}

    def level(folder, seen=()):
        if folder in depth:
            return depth[folder]
        if folder in seen:        # a cycle: the rules allow one
            return 0
        below = [level(a, seen + (folder,)) for a in rules.get(folder, [])]
        depth[folder] = 1 + max(below) if below else 0
        return depth[folder]

    for folder in rules:
        level(folder)
    def key(f):
        return (depth.get(f, 0), f)

    order = sorted(rules, key=key)
    width = max((len(f) for f in order), default=0)
    out = []
    for folder in order:
        allowed = sorted(rules[folder], key=key)
        out.append("%-*s  may include: %s" % (width, folder,
                   " ".join(allowed) if allowed else "(nothing)"))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", help="the tree to check (default: src/ beside tools/)")
    ap.add_argument("--graph", action="store_true",
                    help="print the allowed include graph and exit")
    args = ap.parse_args(argv)
    src = args.src or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   os.pardir, "src")
    src = os.path.normpath(src)
    if not os.path.isdir(src):
        print("check_layers: no folder %s" % src, file=sys.stderr)
        return 2
    if args.graph:
        print(graph(src))
        return 0
    problems = check(src)
    for path, lineno, msg in problems:
        print("%s:%d: %s" % (os.path.relpath(path), lineno, msg))
    if problems:
        print("check_layers: %d problem(s)" % len(problems), file=sys.stderr)
        return 1
    print("check_layers: %d folders, include rules hold" % len(source_folders(src)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
