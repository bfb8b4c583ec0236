"""A small Kubernetes API client for the benchmark scripts: requests and watches over kept-alive
TLS connections, as the admin user of the current kubeconfig.

No kubectl process per request: a poll or a status write costs the 2-core machine one HTTP
round trip, and a watch delivers changes within milliseconds, so the times measured are the
operator's, not the harness's. Every request carries a User-Agent that does not start with
`weir/`, so the audit counting never takes it for the operator.
"""
import base64
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import time
import urllib.parse

_config = None


def _kubeconfig():
    """(host, port, ssl context) of the current kubeconfig, read once per process."""
    global _config
    if _config is None:
        raw = subprocess.run(
            ["kubectl", "config", "view", "--raw", "--minify", "-o", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
        config = json.loads(raw)
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        context = ssl.create_default_context(cafile=_file(cluster, "certificate-authority"))
        context.load_cert_chain(_file(user, "client-certificate"), _file(user, "client-key"))
        _config = (url.hostname, url.port or 443, context)
    return _config


def _file(section, key):
    """A path for a kubeconfig credential given either as a path or inline as -data."""
    if key in section:
        return section[key]
    handle, path = tempfile.mkstemp(prefix="weir-bench-")
    with os.fdopen(handle, "wb") as f:
        f.write(base64.b64decode(section[key + "-data"]))
    return path


class ApiError(RuntimeError):
    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path}: {status} {body[:300]!r}")
        self.status = status


class Api:
    """Requests to the API server over one kept-alive connection. Not thread-safe: give each
    thread its own."""

    def __init__(self, agent="weir-bench", timeout=60):
        self.agent = agent
        self.timeout = timeout
        self.conn = None

    def _connect(self, timeout=None):
        host, port, context = _kubeconfig()
        return http.client.HTTPSConnection(host, port, context=context, timeout=timeout or self.timeout)

    def request(self, method, path, body=None, content_type="application/json"):
        headers = {"User-Agent": self.agent, "Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        broken = 0
        busy = 0
        while True:
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: one fresh try.
                self.conn.close()
                self.conn = None
                broken += 1
                if broken == 2:
                    raise
                continue
            # 429: the API server is busy, or a new resource's storage is still starting.
            if response.status == 429 and busy < 30:
                busy += 1
                time.sleep(float(response.getheader("Retry-After") or 1))
                continue
            break
        if response.status >= 300:
            raise ApiError(method, path, response.status, raw)
        return json.loads(raw) if raw else None

    def get(self, path):
        return self.request("GET", path)

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def apply(self, path, obj, manager="weir-bench"):
        """Server-side apply of `obj` (a dict) to its own path, e.g. .../microservices/NAME."""
        return self.request("PATCH", f"{path}?fieldManager={manager}&force=true", obj,
                            "application/apply-patch+yaml")

    def delete(self, path):
        try:
            return self.request("DELETE", path)
        except ApiError as e:
            if e.status != 404:
                raise

    def watch(self, path, stop=lambda: False):
        """Yields (type, object, received epoch seconds) for every object under the list path
        `path`: first ADDED for each one listed and ("SYNCED", None, time), then every change. A watch that ends or
        expires is resumed, relisting when the server no longer has its resourceVersion.
        Returns when `stop()` is true after an event or a bookmark (at least every 10 s)."""
        resource_version = None
        while not stop():
            if resource_version is None:
                listed = self.get(path)
                resource_version = listed["metadata"]["resourceVersion"]
                now = time.time()
                for item in listed["items"]:
                    yield "ADDED", item, now
                yield "SYNCED", None, now
            sep = "&" if "?" in path else "?"
            query = f"{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=10&resourceVersion={resource_version}"
            conn = self._connect(timeout=30)
            try:
                conn.request("GET", path + query, headers={"User-Agent": self.agent, "Accept": "application/json"})
                response = conn.getresponse()
                if response.status != 200:
                    body = response.read()
                    if response.status == 410:
                        resource_version = None
                        continue
                    if response.status == 429 or response.status >= 500:
                        time.sleep(1)
                        continue
                    raise ApiError("GET", path + query, response.status, body)
                while True:
                    line = response.readline()
                    if not line:
                        break
                    received = time.time()
                    event = json.loads(line)
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            resource_version = None
                        break
                    resource_version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        yield kind, obj, received
                    if stop():
                        return
            except (http.client.HTTPException, OSError, ValueError):
                time.sleep(0.2)  # a broken stream: resume from the last resourceVersion
            finally:
                conn.close()


def condition(obj, kind):
    """The status of condition `kind` on obj, or None."""
    for c in (obj.get("status") or {}).get("conditions", []):
        if c.get("type") == kind:
            return c.get("status")
    return None


def proc_kib(pid, field="VmRSS"):
    """A field (KiB) of /proc/<pid>/status, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
