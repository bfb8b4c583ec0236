//! `make bench`: how close Weir gets to the floor of this cluster, what it costs, and how fast
//! and lean its releases are. docs/development.md ("Benchmarks") explains every figure.
//!
//! hack/bench.sh starts a private control plane and runs this driver on it (`cargo bench
//! --bench weir`); the driver starts a fresh operator for each selected part, drives it and
//! writes `target/bench/<part>.json`, a table per part and a summary. The parts:
//!   core     N Deployments + Services applied directly (the floor) against N Microservices,
//!            BENCH_RUNS times; API writes per Microservice; an idle window; operator RSS.
//!   release  a 10-step canary through Gateway API: overhead per step beyond the pauses.
//!   abort    background analysis starts failing: time until the route is back on stable.
//!   scale    100, 1000, 3000, 10000 Microservices at rest up to N: time, requests and
//!            memory per object, idle writes, CPU per process; then RELEASING of the N
//!            release at once: time, requests, RSS.
//!   soak     SOAK_N Microservices release in a loop for SOAK_MINUTES; fails when memory
//!            keeps growing.
//!   traffic  (BENCH=traffic) releases measured by the requests a steady load gets through
//!            the local Gateway: share settle time per step, blast radius, replica ratio.
//!   peers    (BENCH=peers) Weir, Flagger and Argo Rollouts side by side, each alone on a
//!            fresh cluster: time to converge, RSS, requests, idle writes, CPU, first step.
//!
//! `cargo bench --bench weir -- --check` only validates the settings, before a cluster starts.
#![forbid(unsafe_code)]

/// A progress line on stderr.
macro_rules! log {
    ($($arg:tt)*) => { eprintln!("[bench] {}", format!($($arg)*)) };
}

/// Fails the benchmark: says why on stderr and exits non-zero. hack/bench.sh removes the
/// cluster (and the operator, recorded in its pids/) on any exit.
macro_rules! die {
    ($($arg:tt)*) => {{
        eprintln!("[bench] error: {}", format!($($arg)*));
        std::process::exit(1)
    }};
}

// The cluster tests' support; the driver uses part of what it re-exports.
#[allow(unused_imports)]
#[path = "../../tests/support/mod.rs"]
mod support;

mod abort;
mod audit;
mod cluster;
mod core;
mod generate;
mod memory;
mod peers;
mod release;
mod report;
mod scale;
mod scale_curve;
mod settings;
mod soak;
mod summary;
mod traffic;

use std::path::Path;

use cluster::Bench;

/// dhat measures the heap a cache holds (memory.rs); without a running profiler it passes
/// every allocation to the system allocator.
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;
use settings::Settings;

#[tokio::main]
async fn main() {
    // `cargo bench` adds `--bench`; the parts and settings come from the environment.
    let check_only = std::env::args().skip(1).any(|a| a == "--check");
    let settings = Settings::from_env().unwrap_or_else(|e| die!("{e}"));
    if check_only {
        println!("{}", settings.parts.join(" "));
        return;
    }
    prepare_out(&settings.out, &settings.parts);
    let bench = Bench::connect(settings).await;
    let mut soak_failed = false;
    for part in bench.settings.parts.clone() {
        log!("=== {part} ===");
        let dir = bench.settings.out.join(&part);
        match part.as_str() {
            "core" => core::run(&bench, &dir).await,
            "release" => release::run(&bench, &dir).await,
            "abort" => abort::run(&bench, &dir).await,
            "scale" => scale::run(&bench, &dir).await,
            "soak" => soak_failed = soak::run(&bench, &dir).await,
            "traffic" => traffic::run(&bench, &dir).await,
            "peers" => peers::run(&bench, &dir).await,
            other => die!("unknown part {other}"),
        }
        let json = bench.settings.out.join(format!("{part}.json"));
        if !json.exists() {
            die!("{part} wrote no {}", json.display());
        }
        log!("wrote {}", json.display());
    }
    summary::print(&bench.settings.out, &bench.settings.parts);
    if soak_failed {
        die!(
            "soak: the operator's memory kept growing, or no release finished (see {})",
            bench.settings.out.join("soak.json").display()
        );
    }
}

/// Clears what an earlier run of the selected parts left, and the layout before parts (and
/// before the fake gateway's log moved into each part's directory).
fn prepare_out(out: &Path, parts: &[String]) {
    std::fs::create_dir_all(out).unwrap_or_else(|e| die!("create {}: {e}", out.display()));
    for old in [
        "events.jsonl",
        "rss.tsv",
        "weir.log",
        "floor.yaml",
        "weir.yaml",
        "gateway.jsonl",
        "gateway.log",
    ] {
        let _ = std::fs::remove_file(out.join(old));
    }
    for part in parts {
        let dir = out.join(part);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(out.join(format!("{part}.json")));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| die!("create {}: {e}", dir.display()));
    }
}
