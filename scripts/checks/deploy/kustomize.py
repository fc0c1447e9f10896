"""Renders a kustomization the way `kubectl kustomize` does, for the subset deploy/k8s uses
(resources, namespace, labels, images, strategic-merge patches), so the check needs no kubectl.

    python3 kustomize.py deploy/k8s/overlays/prod   # prints the manifests as one YAML stream
"""
import copy
import os
import sys

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "IngressClass", "CustomResourceDefinition", "PriorityClass"}
KNOWN = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(base, patch):
    """Strategic merge as far as these manifests need it: maps merge, lists of named maps merge
    by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, existing in enumerate(out):
                if existing["name"] == item["name"]:
                    out[i] = merge(existing, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def render(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - KNOWN
    if unknown:
        raise SystemExit(f"{directory}: kustomization fields this renderer does not know: {sorted(unknown)}")
    docs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        docs += render(p) if os.path.isdir(p) else load_all(p)
    for patch in k.get("patches", []):
        if set(patch) != {"path"}:
            raise SystemExit(f"{directory}: only `patches: - path:` is supported, not {patch}")
        for pd in load_all(os.path.join(directory, patch["path"])):
            targets = [i for i, d in enumerate(docs)
                       if d["kind"] == pd["kind"] and d["metadata"]["name"] == pd["metadata"]["name"]]
            if len(targets) != 1:
                raise SystemExit(f"{directory}: patch {pd['kind']}/{pd['metadata']['name']} matches {len(targets)} resources")
            docs[targets[0]] = merge(docs[targets[0]], pd)
    for label in k.get("labels", []):
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(label["pairs"])
    for img in k.get("images", []):
        for d in docs:
            for c in containers(d):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    return docs


if __name__ == "__main__":
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=True)
