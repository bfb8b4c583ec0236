#!/usr/bin/env python3
"""Writes docs/reference.md from the schemas of Weir's CRDs (crds/*.weir.dev.yaml).

    hack/gen-reference.py            # rewrite docs/reference.md
    hack/gen-reference.py --check    # exit 1 when docs/reference.md is not what the CRD gives
    hack/gen-reference.py --stdout   # print it instead

One table per object of the schema (field, type, default and bounds, description), the CEL
rules each object carries, and the printer columns. Kubernetes types that Weir embeds as they
are (EnvVar, Probe, Volume, ...) are named, not repeated.

The CRD is read with PyYAML when it is installed (Debian's python3-yaml); otherwise kubectl
converts it to JSON without a cluster (`kubectl annotate --local -o json`).
"""

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CRDs, in the order of the page: the Microservice first.
CRDS = ["microservices.weir.dev.yaml", "metrictemplates.weir.dev.yaml"]
OUT = os.path.join(ROOT, "docs", "reference.md")

# Fields whose schema is a Kubernetes type, embedded whole: documented upstream.
KUBERNETES_TYPES = {
    "spec.env[]": ("EnvVar", "core/v1"),
    "spec.envFrom[]": ("EnvFromSource", "core/v1"),
    "spec.resources": ("ResourceRequirements", "core/v1"),
    "spec.probes.readiness": ("Probe", "core/v1"),
    "spec.probes.liveness": ("Probe", "core/v1"),
    "spec.probes.startup": ("Probe", "core/v1"),
    "spec.pod.tolerations[]": ("Toleration", "core/v1"),
    "spec.pod.volumes[]": ("Volume", "core/v1"),
    "spec.pod.volumeMounts[]": ("VolumeMount", "core/v1"),
    "spec.pod.securityContext": ("PodSecurityContext", "core/v1"),
    "spec.pod.containerSecurityContext": ("SecurityContext", "core/v1"),
    "spec.pod.imagePullSecrets[]": ("LocalObjectReference", "core/v1"),
    "status.conditions[]": ("Condition", "meta/v1"),
}

DEFAULTS = re.compile(r"(Defaults to [^.]*(?:\.\d[^.]*)*\.)")


def load_crd(name):
    path = os.path.join(ROOT, "crds", name)
    try:
        import yaml  # noqa: PLC0415 (optional)
    except ImportError:
        yaml = None
    if yaml is not None:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    kubectl = shutil.which("kubectl") or os.path.join(ROOT, ".cluster", "bin", "kubectl")
    if not os.path.exists(kubectl):
        sys.exit("gen-reference: needs PyYAML (apt-get install python3-yaml) or kubectl on PATH")
    env = dict(os.environ, KUBECONFIG=os.devnull)
    out = subprocess.run(
        [kubectl, "annotate", "--local", "-o", "json", "-f", path, "weir.dev/reference=1"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    return json.loads(out)


def number(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(text):
    """Text for one Markdown table cell: one line, pipes escaped."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|")


def code(text):
    text = str(text)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def type_of(path, schema):
    if path in KUBERNETES_TYPES or (path + "[]") in KUBERNETES_TYPES:
        key = path if path in KUBERNETES_TYPES else path + "[]"
        name, group = KUBERNETES_TYPES[key]
        named = f"{name} ({group})"
        return f"[]{named}" if key.endswith("[]") and not path.endswith("[]") else named
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("items", {})
        return "[]" + (type_of(path + "[]", items) or "any")
    if kind == "object" and "properties" not in schema and "additionalProperties" in schema:
        inner = schema["additionalProperties"]
        return "map[string]" + (inner.get("type", "any") if isinstance(inner, dict) else "any")
    if kind == "object" and "properties" in schema:
        return f"[object](#{anchor_of(path)})"
    fmt = schema.get("format")
    if kind == "number" and fmt == "double":
        return "number"
    return f"{kind} ({fmt})" if fmt in ("int32", "int64", "date-time") else (kind or "any")


def anchor_of(path):
    return re.sub(r"[^a-z0-9-]", "", path.lower().replace(".", "").replace("[]", ""))


def bounds(schema, required):
    parts = []
    if required:
        parts.append("**required**")
    if "default" in schema:
        parts.append("default " + code(json.dumps(schema["default"])))
    if "enum" in schema:
        parts.append("one of " + ", ".join(code(v) for v in schema["enum"] if v is not None))
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        parts.append(f"{number(lo)} to {number(hi)}")
    elif lo is not None:
        parts.append(f"≥ {number(lo)}")
    elif hi is not None:
        parts.append(f"≤ {number(hi)}")
    for key, word in (("minLength", "length ≥"), ("maxLength", "length ≤"),
                      ("minItems", "items ≥"), ("maxItems", "items ≤")):
        if key in schema:
            parts.append(f"{word} {number(schema[key])}")
    if "pattern" in schema:
        parts.append("matches " + code(schema["pattern"]))
    items = schema.get("items")
    if isinstance(items, dict) and "enum" in items:
        parts.append("each one of " + ", ".join(code(v) for v in items["enum"] if v is not None))
    if schema.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(schema.get("x-kubernetes-list-map-keys", []))
        parts.append(f"a map keyed by {code(keys)}")
    description = schema.get("description", "")
    for sentence in DEFAULTS.findall(description):
        parts.append("default: " + sentence[len("Defaults to "):].rstrip(".").strip())
    return "; ".join(parts)


def objects(path, schema, out):
    """Collects (path, schema) for each object with properties, depth first in field order."""
    if path in KUBERNETES_TYPES:
        return
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        objects(path + "[]", schema["items"], out)
        return
    if "properties" not in schema:
        return
    out.append((path, schema))
    for name in sorted(schema["properties"]):
        child = f"{path}.{name}" if path else name
        objects(child, schema["properties"][name], out)


def render(crd, source):
    spec = crd["spec"]
    version = spec["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    names = spec["names"]
    lines = [
        f"# {names['kind']} API reference",
        "",
        f"<!-- Generated by hack/gen-reference.py from crds/{source}. "
        "Do not edit: run `hack/gen-reference.py`. -->",
        "",
        f"`{names['kind']}` (`{spec['group']}/{version['name']}`), {spec['scope'].lower()}, "
        f"plural `{names['plural']}`, short name "
        + ", ".join(f"`{n}`" for n in names.get("shortNames", []))
        + (", category " + ", ".join(f"`{c}`" for c in names.get("categories", []))
           if names.get("categories") else "")
        + ".",
        "",
        cell(root.get("description", "")),
        "",
    ]
    if names["kind"] == "Microservice":
        lines += [
        "This page lists every field the API server accepts, with the bounds it enforces. "
        "What Weir does with them is in [microservice.md](microservice.md), "
        "[releases.md](releases.md) and [concepts.md](concepts.md). A field typed as a Kubernetes "
        "object (EnvVar, Probe, Volume, ...) takes that object as the Kubernetes API defines it: "
        "`kubectl explain microservice.spec.probes.readiness` prints it from the cluster. "
        "The [MetricTemplate](#metrictemplate-api-reference) follows the Microservice.",
        "",
        ]
    sub = version.get("subresources", {})
    if sub:
        lines.append("Subresources: " + ", ".join(f"`/{k}`" for k in sorted(sub)) + ".")
        scale = sub.get("scale")
        if scale:
            lines[-1] += (
                f" `/scale` reads `{scale['specReplicasPath']}`, "
                f"`{scale['statusReplicasPath']}` and `{scale.get('labelSelectorPath', '')}`."
            )
        lines.append("")
    columns = version.get("additionalPrinterColumns", [])
    if columns:
        short = (names.get("shortNames") or [names["plural"]])[0]
        lines += [f"## Printer columns (`kubectl get {short}`)", "",
                  "| column | type | value |", "|---|---|---|"]
        for c in columns:
            lines.append(f"| {c['name']} | {c['type']} | {code(c['jsonPath'])} |")
        lines.append("")

    found = []
    objects("", root, found)
    toc = []
    for path, _ in found:
        if path:
            toc.append(f"[`{path}`](#{anchor_of(path)})")
    lines += ["## Objects", "", " · ".join(toc), ""]

    for path, schema in found:
        title = path or names["kind"]
        lines.append(f"## {'`' + path + '`' if path else title}")
        lines.append("")
        if path and schema.get("description"):
            lines.append(cell(schema["description"]))
            lines.append("")
        required = set(schema.get("required", []))
        lines += ["| field | type | default and bounds | description |", "|---|---|---|---|"]
        for name in sorted(schema["properties"]):
            child = schema["properties"][name]
            child_path = f"{path}.{name}" if path else name
            description = child.get("description", "")
            lines.append(
                f"| `{name}` | {cell(type_of(child_path, child))} | "
                f"{cell(bounds(child, name in required))} | {cell(description)} |"
            )
        lines.append("")
        rules = list(schema.get("x-kubernetes-validations", []))
        for name in sorted(schema["properties"]):
            child = schema["properties"][name]
            if "properties" in child:
                continue  # listed in the child's own section
            for rule in child.get("x-kubernetes-validations", []):
                rules.append(dict(rule, field=name))
        if rules:
            lines.append("Refused at admission:")
            lines.append("")
            for rule in rules:
                where = f"`{rule['field']}`: " if "field" in rule else ""
                message = rule.get("message") or rule["rule"]
                lines.append(f"- {where}{cell(message)} ({code(rule['rule'])})")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/reference.md differs from what the CRD gives")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args()
    text = "\n".join(render(load_crd(name), name) for name in CRDS)
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(OUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                        "docs/reference.md", "from the CRD")
            sys.stderr.writelines(list(diff)[:60])
            sys.stderr.write("docs/reference.md is stale: run hack/gen-reference.py and commit it\n")
            return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
