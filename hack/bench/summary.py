#!/usr/bin/env python3
"""Prints one line per headline figure of the parts that ran, with its target where it has one.

    summary.py --dir target/bench PART...

Reads target/bench/<part>.json. Only the soak's verdict makes `make bench` fail; the other
targets are reported here, for comparing commits on the same machine.
"""
import argparse
import json
import os


def fmt(value, digits=2, unit=""):
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def verdict(ok):
    return "" if ok is None else ("met" if ok else "NOT MET")


def rows(part, r):
    if part == "core":
        return [
            ("core", "ratio weir / floor (time to ready)", fmt(r["ratio"]), "", ""),
            ("core", "API writes per Microservice", fmt(r["writes_per_microservice"]), "", ""),
            ("core", "idle writes", str(r["idle_writes"]), "0", verdict(r["idle_writes"] == 0)),
            ("core", "operator RSS peak / settled",
             f"{fmt(r['peak_rss_mib'], 1)} / {fmt(r['settled_rss_mib'], 1)} MiB", "", ""),
        ]
    if part == "release":
        return [("release", f"overhead per canary step ({r['steps']} steps)", fmt(r["overhead_per_step_ms"], 0, " ms"),
                 f"< {r['target_overhead_per_step_ms']} ms", verdict(r["target_met"]))]
    if part == "abort":
        return [("abort", "first failing measurement -> route back on stable", fmt(r["reaction_seconds"], 3, " s"),
                 f"< {r['target_reaction_seconds']:g} s", verdict(r["target_met"]))]
    if part == "scale":
        return [
            ("scale", f"{r['releasing']} of {r['n']} release at once: all done", fmt(r["all_finished_seconds"], 1, " s"), "", ""),
            ("scale", "API requests per release", fmt(r["requests_per_release"], 1), "", ""),
            ("scale", "operator RSS peak / settled",
             f"{fmt(r['peak_rss_mib'], 1)} / {fmt(r['settled_rss_mib'], 1)} MiB", "", ""),
        ]
    if part == "soak":
        judged = r["judged"]
        return [
            ("soak", f"releases in {r['minutes']:g} min on {r['n']}", str(r["releases"]), "> 0", verdict(r["releases"] > 0)),
            ("soak", "operator RSS start / end", f"{fmt(r['start_rss_mib'], 1)} / {fmt(r['end_rss_mib'], 1)} MiB", "", ""),
            ("soak", "RSS trend", fmt(r["slope_kib_per_minute"], 1, " KiB/min"),
             f"<= {fmt(r['slope_limit_kib_per_minute'], 1)} KiB/min",
             verdict(not r["growing"]) if judged else "not judged (< 10 min)"),
        ]
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("parts", nargs="+")
    args = parser.parse_args()
    table = []
    for part in args.parts:
        path = os.path.join(args.dir, f"{part}.json")
        if os.path.exists(path):
            with open(path) as f:
                table += rows(part, json.load(f))
    if not table:
        return
    header = ("part", "figure", "value", "target", "")
    widths = [max(len(row[i]) for row in table + [header]) for i in range(5)]
    print("\nsummary (details above and in target/bench/<part>.json)")
    for row in [header, tuple("-" * w for w in widths)] + table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
