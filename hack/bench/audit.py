"""Reads the operator's requests out of the API server's audit log (Metadata level, JSON lines).

The operator is every entry whose userAgent starts with `weir/` (the benchmark's own clients
call themselves weir-bench...). Each request is counted once, by auditID, at the time the API
server received it; a watch logs two stages (ResponseStarted, ResponseComplete) and counts
once. Leader-election Lease requests are marked, so callers can count them apart.
"""
import datetime
import json


def timestamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def operator_requests(audit_path, start=None, end=None):
    """[(received epoch seconds, verb, resource[/subresource], namespace, is_lease)] of every
    operator request received within [start, end] (either bound may be None)."""
    seen = set()
    found = []
    with open(audit_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "weir/" not in line:  # cheap filter: the log also holds every other client
                continue
            entry = json.loads(line)
            if not entry.get("userAgent", "").startswith("weir/") or entry["auditID"] in seen:
                continue
            received = timestamp(entry.get("requestReceivedTimestamp") or entry["stageTimestamp"])
            if (start is not None and received < start) or (end is not None and received > end):
                continue
            seen.add(entry["auditID"])
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            is_lease = ref.get("resource") == "leases" and ref.get("apiGroup") == "coordination.k8s.io"
            found.append((received, entry["verb"], resource, ref.get("namespace", ""), is_lease))
    return found
