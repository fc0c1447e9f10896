"""Terraform without terraform: every .tf file parses (python-hcl2), every var./local./data./
resource reference resolves to a declaration, and every variable and output has a description.

    python3 terraform_check.py deploy/terraform     # prints one line per finding, exits 1 on any
"""
import glob
import os
import re
import sys

import hcl2

REF = re.compile(r"(?<![\w.\"-])(var|local|data|module|aws_\w+|random_\w+)\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")


def strings(node):
    """Every string in a parsed HCL tree (expressions come back as "${...}" strings)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            if not k.startswith("__"):
                yield from strings(k)
                yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def unquote(s):
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def load(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.tf")))
    parsed, problems = {}, []
    for f in files:
        try:
            with open(f) as fh:
                parsed[f] = hcl2.load(fh)
        except Exception as e:  # noqa: BLE001 - any parse failure is a finding
            problems.append(f"{f}: does not parse: {e}")
    return parsed, problems


def declarations(parsed):
    decl = {"var": set(), "local": set(), "data": set(), "resource": set(), "module": set()}
    for tree in parsed.values():
        for v in tree.get("variable", []):
            decl["var"].update(unquote(k) for k in v)
        for block in tree.get("locals", []):
            decl["local"].update(k for k in block if not k.startswith("__"))
        for r in tree.get("resource", []):
            for rtype, named in r.items():
                decl["resource"].update(f"{unquote(rtype)}.{unquote(n)}" for n in named)
        for d in tree.get("data", []):
            for dtype, named in d.items():
                decl["data"].update(f"{unquote(dtype)}.{unquote(n)}" for n in named)
        for m in tree.get("module", []):
            decl["module"].update(unquote(k) for k in m)
    return decl


def check(directory):
    parsed, problems = load(directory)
    if not parsed:
        problems.append(f"{directory}: no .tf files")
    decl = declarations(parsed)
    for f, tree in parsed.items():
        for v in tree.get("variable", []):
            for name, body in v.items():
                if not body.get("description"):
                    problems.append(f"{f}: variable {unquote(name)} has no description")
        for o in tree.get("output", []):
            for name, body in o.items():
                if not body.get("description"):
                    problems.append(f"{f}: output {unquote(name)} has no description")
        for s in strings(tree):
            if "${" not in s:
                continue
            # Expressions nest braces (jsonencode of maps), so scan the whole string.
            for kind, a, b in REF.findall(s):
                if kind in ("var", "local", "module"):
                    ok = a in decl[kind]
                    ref = f"{kind}.{a}"
                elif kind == "data":
                    ok = f"{a}.{b}" in decl["data"]
                    ref = f"data.{a}.{b}"
                else:
                    ok = f"{kind}.{a}" in decl["resource"]
                    ref = f"{kind}.{a}"
                if not ok:
                    problems.append(f"{f}: {ref} is referenced but never declared")
    return sorted(set(problems)), decl


if __name__ == "__main__":
    found, decl = check(sys.argv[1])
    for p in found:
        print(p)
    print(f"terraform: {len(decl['resource'])} resources, {len(decl['var'])} variables, "
          f"{len(decl['local'])} locals, {len(found)} problems")
    sys.exit(1 if found else 0)
