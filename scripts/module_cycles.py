#!/usr/bin/env python3
"""Finds import cycles between the top-level modules of a crate's `src`.

A module's edges are every `crate::NAME` path its files mention (in `use` lines or
inline), NAME being another top-level module; `super::` inside a module stays inside
it. Prints the cycles and exits 1 when there is one. Usage:
    scripts/module_cycles.py crates/server/src
"""
import os
import re
import sys


def top_module(root, path):
    rel = os.path.relpath(path, root)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def graph(root):
    modules = set()
    edges = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                modules.add(top_module(root, os.path.join(dirpath, f)))
    modules -= {"lib", "main"}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            me = top_module(root, path)
            text = open(path, encoding="utf-8").read()
            # Tests may reach anywhere; only the code's own shape counts.
            text = text.split("#[cfg(test)]")[0]
            text = re.sub(r"//[^\n]*", "", text)
            names = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", text))
            for block in re.findall(r"use crate::\{([^;]*)\}", text):
                names |= set(re.findall(r"(?:^|[,{\s])([a-z_][a-z0-9_]*)::", block))
                names |= set(re.findall(r"(?:^|[,{\s])([a-z_][a-z0-9_]*)\s*[,}]", block))
            for n in names:
                if n in modules and n != me:
                    edges.setdefault(me, set()).add(n)
    return modules, edges


def cycles(modules, edges):
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "crates/server/src"
    modules, edges = graph(root)
    found = cycles(modules, edges)
    for c in found:
        print("module cycle: " + " -> ".join(c))
    if "-v" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m]))}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
