//! One line per headline figure of the parts that ran, with its target where it has one.
//! Only the soak's verdict makes `make bench` fail; the other targets are reported here, for
//! comparing commits on the same machine.

use std::path::Path;

use serde_json::Value;

use crate::report::{fmt, num};

fn verdict(ok: Option<bool>) -> String {
    match ok {
        None => String::new(),
        Some(true) => "met".into(),
        Some(false) => "NOT MET".into(),
    }
}

type Line = [String; 5];

fn line(
    part: &str,
    figure: impl Into<String>,
    value: impl Into<String>,
    target: impl Into<String>,
    ok: String,
) -> Line {
    [
        part.to_string(),
        figure.into(),
        value.into(),
        target.into(),
        ok,
    ]
}

fn rss(r: &Value) -> String {
    format!(
        "{} / {} MiB",
        fmt(num(r, "peak_rss_mib"), 1, ""),
        fmt(num(r, "settled_rss_mib"), 1, "")
    )
}

fn rows(part: &str, r: &Value) -> Vec<Line> {
    match part {
        "core" => vec![
            line(
                part,
                "ratio weir / floor (time to ready)",
                fmt(num(r, "ratio"), 2, ""),
                "",
                String::new(),
            ),
            line(
                part,
                "API writes per Microservice",
                fmt(num(r, "writes_per_microservice"), 2, ""),
                "",
                String::new(),
            ),
            line(
                part,
                "idle writes",
                r["idle_writes"].to_string(),
                "0",
                verdict(Some(r["idle_writes"] == 0)),
            ),
            line(
                part,
                "operator RSS peak / settled",
                rss(r),
                "",
                String::new(),
            ),
        ],
        "release" => vec![line(
            part,
            format!("overhead per canary step ({} steps)", r["steps"]),
            fmt(num(r, "overhead_per_step_ms"), 0, " ms"),
            format!("< {} ms", r["target_overhead_per_step_ms"]),
            verdict(r["target_met"].as_bool()),
        )],
        "abort" => vec![line(
            part,
            "first failing measurement -> route back on stable",
            fmt(num(r, "reaction_seconds"), 3, " s"),
            format!(
                "< {} s",
                num(r, "target_reaction_seconds").unwrap_or_default()
            ),
            verdict(r["target_met"].as_bool()),
        )],
        "scale" => vec![
            line(
                part,
                format!("{} of {} release at once: all done", r["releasing"], r["n"]),
                fmt(num(r, "all_finished_seconds"), 1, " s"),
                "",
                String::new(),
            ),
            line(
                part,
                "API requests per release",
                fmt(num(r, "requests_per_release"), 1, ""),
                "",
                String::new(),
            ),
            line(
                part,
                "operator RSS peak / settled",
                rss(r),
                "",
                String::new(),
            ),
        ],
        "soak" => {
            let trend = if r["judged"] == true {
                verdict(Some(r["growing"] != true))
            } else {
                "not judged (< 10 min)".into()
            };
            vec![
                line(
                    part,
                    format!(
                        "releases in {} min on {}",
                        num(r, "minutes").unwrap_or_default(),
                        r["n"]
                    ),
                    r["releases"].to_string(),
                    "> 0",
                    verdict(Some(num(r, "releases").unwrap_or_default() > 0.0)),
                ),
                line(
                    part,
                    "operator RSS start / end",
                    format!(
                        "{} / {} MiB",
                        fmt(num(r, "start_rss_mib"), 1, ""),
                        fmt(num(r, "end_rss_mib"), 1, "")
                    ),
                    "",
                    String::new(),
                ),
                line(
                    part,
                    "RSS trend",
                    fmt(num(r, "slope_kib_per_minute"), 1, " KiB/min"),
                    format!(
                        "<= {} KiB/min",
                        fmt(num(r, "slope_limit_kib_per_minute"), 1, "")
                    ),
                    trend,
                ),
            ]
        }
        "traffic" => {
            let canary = &r["canary"];
            let mut lines = vec![
                line(
                    part,
                    "weight write -> measured share within 5 points (median)",
                    fmt(num(canary, "settled_seconds_median"), 3, " s"),
                    "",
                    String::new(),
                ),
                line(
                    part,
                    "requests failed over a canary",
                    format!("{} of {}", canary["failed"], canary["requests"]),
                    "0",
                    verdict(canary["failed"].as_u64().map(|f| f == 0)),
                ),
            ];
            for blast in r["blast_radius"].as_array().into_iter().flatten() {
                lines.push(line(
                    part,
                    format!(
                        "blast radius, analysis every {}",
                        blast["interval"].as_str().unwrap_or("?")
                    ),
                    format!(
                        "{} failed, {}% broken",
                        blast["failed"], blast["broken_share_percent"]
                    ),
                    "",
                    String::new(),
                ));
            }
            lines
        }
        _ => Vec::new(),
    }
}

/// Prints the summary of `parts` from `<dir>/<part>.json`.
pub fn print(dir: &Path, parts: &[String]) {
    let mut table: Vec<Line> = Vec::new();
    for part in parts {
        let path = dir.join(format!("{part}.json"));
        let Some(result) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            continue;
        };
        table.extend(rows(part, &result));
    }
    if table.is_empty() {
        return;
    }
    let header: Line = ["part", "figure", "value", "target", ""].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            table
                .iter()
                .chain([&header])
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule: Line = std::array::from_fn(|i| "-".repeat(widths[i]));
    println!("\nsummary (details above and in target/bench/<part>.json)");
    for row in [&header, &rule].into_iter().chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
