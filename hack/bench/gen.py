#!/usr/bin/env python3
"""Writes the objects one benchmark phase applies, as one multi-document YAML on stdout.

    gen.py floor N REPLICAS   N Deployments and N Services, the work with no operator at all
    gen.py weir N REPLICAS    N Microservices asking Weir for the same

Both sides use the same names, image, replica count and ports, so the only difference
between the phases is who turns the request into Deployments and Services.
"""
import sys

IMAGE = "registry.example/bench:1"


def name(i):
    return f"bench-{i:04d}"


def floor(n, replicas):
    for i in range(n):
        app = name(i)
        yield f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{app: {app}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
      - name: app
        image: {IMAGE}
        ports: [{{name: http, containerPort: 8080}}]
"""
        yield f"""apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def weir(n, replicas):
    for i in range(n):
        yield f"""apiVersion: weir.dev/v1alpha1
kind: Microservice
metadata:
  name: {name(i)}
spec:
  image: {IMAGE}
  replicas: {replicas}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("floor", "weir"):
        sys.exit("usage: gen.py floor|weir N REPLICAS")
    kind, n, replicas = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    docs = floor(n, replicas) if kind == "floor" else weir(n, replicas)
    sys.stdout.write("---\n".join(docs))


if __name__ == "__main__":
    main()
