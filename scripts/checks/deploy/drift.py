"""Configuration drift: every deployment file against what the engine understands.

Reads the engine's own list (`boxoffice config --list --json`), then the resolved compose file,
the rendered Kubernetes overlays, the ECS task definitions in Terraform and the Dockerfile, and
reports every variable the engine does not know (a typo like PAYMENT_URL starts nothing and
fails silently), every variable production requires that a production unit leaves out, and
every image tag that the build does not produce (the version in Cargo.toml).

    python3 drift.py VARS.jsonl COMPOSE_RESOLVED.yaml REPO_ROOT [--self-test]
"""
import copy
import json
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import kustomize  # noqa: E402
import terraform_check  # noqa: E402

IMAGE = "boxoffice"
# Seconds the engine may need to stop after SIGTERM beyond REQUEST_TIMEOUT_SECS: the actors'
# last journal batches (startup.rs: registry.shutdown(10 s)).
ACTOR_DRAIN_SECS = 10


def cargo_version(root):
    with open(os.path.join(root, "Cargo.toml")) as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


class Engine:
    def __init__(self, lines):
        self.vars = {v["name"]: v for v in (json.loads(line) for line in lines if line.strip())}
        if len(self.vars) < 10:
            raise SystemExit(f"the engine listed only {len(self.vars)} variables: is `config --list --json` broken?")

    def default(self, name):
        return self.vars[name]["default"]

    def problems(self, unit, env):
        """`env`: every variable name the unit sets -> its value (None when it comes from a secret)."""
        out = [f"{unit}: sets {n}, which the engine does not know" for n in sorted(env) if n not in self.vars]
        production = (env.get("BOXOFFICE_ENV") or self.default("BOXOFFICE_ENV")) == "production"
        role = env.get("ROLE") or self.default("ROLE")
        for name, v in self.vars.items():
            if v["required"] == "production" and production and name not in env:
                out.append(f"{unit}: runs in production without {name}, which production requires")
            if v["required"] == "split_roles" and role in ("api", "worker") and name not in env:
                out.append(f"{unit}: ROLE={role} without {name}, which that role requires")
        return out


def image_problem(unit, image, version):
    """None when `image` is the engine image at the tag the build makes (or not the engine at all)."""
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if repo.rsplit("/", 1)[-1] != IMAGE:
        return None
    if tag != version:
        return f"{unit}: image {image} has tag {tag or '(none)'}, but the build tags {IMAGE}:{version}"
    return None


def is_engine(image):
    return image.rsplit("/", 1)[-1].split(":")[0] == IMAGE


# ---- compose ------------------------------------------------------------------------------------
def compose_units(resolved):
    for name, svc in resolved.get("services", {}).items():
        image = svc.get("image", "")
        if is_engine(image) or "build" in svc:
            env = svc.get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
            yield f"compose service {name}", image, env


# ---- kubernetes ---------------------------------------------------------------------------------
def k8s_units(docs, overlay):
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if not is_engine(c["image"]):
                continue
            unit = f"k8s {overlay} {d['kind']}/{d['metadata']['name']}"
            env, problems = {}, []
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    name = src["configMapRef"]["name"]
                    if name not in configmaps:
                        problems.append(f"{unit}: envFrom ConfigMap {name} is not in the overlay")
                    env.update(configmaps.get(name, {}))
                else:
                    problems.append(f"{unit}: envFrom {list(src)} hides which variables it sets; name each with secretKeyRef")
            for e in c.get("env", []):
                env[e["name"]] = e.get("value")
            # A variable only there to be expanded into another's value (`$(POD_IP)`) is
            # Kubernetes' business, not a setting of the engine.
            for name in [n for n in env if any(f"$({n})" in (v or "") for v in env.values())]:
                del env[name]
            yield unit, c["image"], env, problems, pod, c


def drain_problem(unit, pod, container, env, engine):
    grace = pod.get("terminationGracePeriodSeconds", 30)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    timeout = int(env.get("REQUEST_TIMEOUT_SECS") or engine.default("REQUEST_TIMEOUT_SECS"))
    need = pre_stop + timeout + ACTOR_DRAIN_SECS
    if grace <= need:
        return f"{unit}: terminationGracePeriodSeconds {grace} is not longer than the drain ({pre_stop} + {timeout} + {ACTOR_DRAIN_SECS} s)"
    return None


# ---- terraform ----------------------------------------------------------------------------------
def terraform_units(root, version):
    parsed, problems = terraform_check.load(os.path.join(root, "deploy", "terraform"))
    uq = terraform_check.unquote
    local, variables, taskdefs = {}, {}, []
    for tree in parsed.values():
        for block in tree.get("locals", []):
            local.update(block)
        for v in tree.get("variable", []):
            variables.update({uq(k): b for k, b in v.items()})
        for r in tree.get("resource", []):
            for rtype, named in r.items():
                if uq(rtype) == "aws_ecs_task_definition":
                    taskdefs += [(uq(n), body) for n, body in named.items()]
    if not taskdefs:
        problems.append("terraform: no aws_ecs_task_definition")
    for name, body in taskdefs:
        cd = body.get("container_definitions", "")
        for needed in ("local.image", "local.environment[each.key]", "local.secrets[each.key]"):
            if needed not in cd:
                problems.append(f"terraform task definition {name}: container_definitions does not use {needed}")
    units = []
    image = uq(local.get("image", ""))
    m = re.fullmatch(r"\$\{aws_ecr_repository\.(\w+)\.repository_url\}:\$\{var\.(\w+)\}", image)
    if not m:
        problems.append(f"terraform: local.image {image!r} is not <ecr repository url>:<variable tag>")
    else:
        tag = uq(str(variables.get(m.group(2), {}).get("default", "")))
        if tag != version:
            problems.append(f"terraform: variable {m.group(2)} defaults to {tag!r}, but the build tags {IMAGE}:{version}")
    for role, env in local.get("environment", {}).items():
        names = {k: uq(str(v)) for k, v in env.items()}
        for k in local.get("secrets", {}).get(role, {}):
            names[k] = None
        units.append((f"terraform ECS role {role}", names))
    if not units:
        problems.append("terraform: local.environment names no role")
    return units, problems


# ---- dockerfile ---------------------------------------------------------------------------------
def dockerfile_env(root):
    with open(os.path.join(root, "deploy", "docker", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    names = []
    for line in text.splitlines():
        if line.startswith("ENV "):
            names += re.findall(r"([A-Z][A-Z0-9_]*)=", line)
    return names


def run(engine, compose, k8s, root, version):
    problems = []
    for unit, image, env in compose_units(compose):
        problems += engine.problems(unit, env)
        p = image_problem(unit, image, version)
        if p or not is_engine(image):
            problems.append(p or f"{unit}: builds the engine but is not tagged {IMAGE}:{version}")
    for overlay, docs in k8s.items():
        for unit, image, env, extra, pod, c in k8s_units(docs, overlay):
            problems += extra + engine.problems(unit, env)
            problems += [p for p in (image_problem(unit, image, version), drain_problem(unit, pod, c, env, engine)) if p]
    units, tf_problems = terraform_units(root, version)
    problems += tf_problems
    for unit, env in units:
        problems += engine.problems(unit, env)
    problems += [f"Dockerfile: ENV {n}, which the engine does not know" for n in dockerfile_env(root) if n not in engine.vars]
    return problems


def self_test(engine, compose, k8s, root, version):
    """The checker must catch each kind of drift: break a copy each way and expect a finding."""
    cases = []
    c = copy.deepcopy(compose)
    next(iter(s for s in c["services"].values() if is_engine(s.get("image", ""))))["environment"]["PAYMENT_URL"] = "x"
    cases.append(("unknown variable in compose", c, k8s, "PAYMENT_URL"))
    c = copy.deepcopy(compose)
    for s in c["services"].values():
        if is_engine(s.get("image", "")):
            s["image"] = f"{IMAGE}:latest"
            break
    cases.append(("image tag no build makes", c, k8s, ":latest"))
    k = copy.deepcopy(k8s)
    overlay = next(iter(k))
    for d in k[overlay]:
        if d["kind"] == "Deployment":
            cont = d["spec"]["template"]["spec"]["containers"][0]
            cont["env"] = [e for e in cont["env"] if e["name"] != "JWT_SECRET"]
            break
    cases.append(("production secret left out of k8s", compose, k, "without JWT_SECRET"))
    k = copy.deepcopy(k8s)
    for d in k[overlay]:
        if d["kind"] == "Deployment":
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20
            break
    cases.append(("grace period shorter than the drain", compose, k, "terminationGracePeriodSeconds 20"))
    failures = []
    for what, c, k, needle in cases:
        found = run(engine, c, k, root, version)
        if not any(needle in p for p in found):
            failures.append(f"self-test: {what} went unnoticed")
    return failures, len(cases)


def main():
    vars_file, compose_file, root = sys.argv[1:4]
    with open(vars_file) as f:
        engine = Engine(f.readlines())
    with open(compose_file) as f:
        compose = yaml.safe_load(f)
    version = cargo_version(root)
    k8s = {o: kustomize.render(os.path.join(root, "deploy", "k8s", *o.split("/"))) for o in ("base", "overlays/dev", "overlays/prod")}
    problems = run(engine, compose, k8s, root, version)
    for p in problems:
        print(f"drift: {p}")
    failed = bool(problems)
    if "--self-test" in sys.argv:
        failures, n = self_test(engine, compose, k8s, root, version)
        for f in failures:
            print(f)
        print(f"drift self-test: {n - len(failures)} of {n} kinds of drift caught")
        failed |= bool(failures)
    print(f"drift: {len(engine.vars)} engine variables, {len(problems)} problems")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
