//! The benchmark's settings, from the environment (docs/development.md lists them).

use std::path::PathBuf;

/// Every part, in the order they run whatever the order in BENCH: core before the others.
/// `traffic` runs only when named (it needs the data plane, which the others run without), and
/// so does `peers` (it restarts the cluster for each controller it compares, so it runs last).
pub const ALL_PARTS: [&str; 7] = [
    "core", "release", "abort", "scale", "soak", "traffic", "peers",
];

#[derive(Clone, Debug)]
pub struct Settings {
    pub parts: Vec<String>,
    pub n: u64,
    pub runs: u64,
    pub replicas: u64,
    pub idle_seconds: u64,
    pub releasing: u64,
    pub settle_seconds: u64,
    pub soak_minutes: u64,
    pub soak_n: u64,
    /// scale's at-rest curve: Microservices at each step, ascending, N last.
    pub scale_steps: Vec<u64>,
    /// scale's Microservices route through Gateway API (BENCH_SCALE_ROUTER=gateway), or by
    /// the ratio of ready pods with no router (`none`, the default: the service the peers
    /// part describes for every tool).
    pub scale_gateway: bool,
    /// target/bench: `<part>.json` and the raw records in `<part>/`.
    pub out: PathBuf,
    /// The private control plane's directory (WEIR_CLUSTER_DIR): pids/, logs/audit.log.
    pub cluster_dir: PathBuf,
    /// The operator binary each part starts (WEIR_BENCH_OPERATOR).
    pub operator: PathBuf,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            let Some(text) = var(name) else {
                return Ok(default);
            };
            let valid = !text.starts_with('0') && text.chars().all(|c| c.is_ascii_digit());
            match text.parse::<u64>() {
                Ok(value) if valid => Ok(value),
                _ => Err(format!("{name}={text}: expected a positive whole number")),
            }
        };
        let selected = match (var("BENCH"), var("SOAK_MINUTES")) {
            (Some(bench), _) => bench,
            (None, Some(_)) => ALL_PARTS[..5].join(","),
            (None, None) => ALL_PARTS[..4].join(","),
        };
        let parts = select_parts(&selected)?;
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let settings = Settings {
            parts,
            n: number("N", 100)?,
            runs: number("BENCH_RUNS", 3)?,
            replicas: number("BENCH_REPLICAS", 1)?,
            idle_seconds: number("BENCH_IDLE_SECONDS", 60)?,
            releasing: number("RELEASING", 50)?,
            settle_seconds: number("BENCH_SETTLE_SECONDS", 30)?,
            soak_minutes: number("SOAK_MINUTES", 30)?,
            soak_n: number("SOAK_N", 100)?,
            scale_steps: crate::scale_curve::steps(
                number("N", 100)?,
                var("BENCH_SCALE_STEPS").as_deref(),
            )?,
            scale_gateway: match var("BENCH_SCALE_ROUTER").as_deref() {
                None | Some("none") => false,
                Some("gateway") => true,
                Some(other) => {
                    return Err(format!(
                        "BENCH_SCALE_ROUTER={other}: expected none (the default) or gateway"
                    ));
                }
            },
            out: var("WEIR_BENCH_OUT").map_or_else(|| root.join("target/bench"), PathBuf::from),
            cluster_dir: var("WEIR_CLUSTER_DIR")
                .map_or_else(|| root.join(".cluster-bench"), PathBuf::from),
            operator: var("WEIR_BENCH_OPERATOR")
                .map_or_else(|| root.join("target/release/weir"), PathBuf::from),
        };
        if settings.parts.iter().any(|p| p == "scale") && settings.releasing > settings.n {
            return Err(format!(
                "RELEASING={}: cannot release more Microservices than N={}",
                settings.releasing, settings.n
            ));
        }
        Ok(settings)
    }

    /// Every wait gets the same deadline: generous, and growing with N so N=1000 fits.
    pub fn deadline(&self) -> f64 {
        self.n.max(300) as f64
    }
}

/// The parts named in `selected` (comma-separated), in the order of [`ALL_PARTS`].
fn select_parts(selected: &str) -> Result<Vec<String>, String> {
    let named: Vec<&str> = selected.split(',').filter(|p| !p.is_empty()).collect();
    if let Some(unknown) = named.iter().find(|p| !ALL_PARTS.contains(p)) {
        return Err(format!(
            "BENCH={selected}: unknown part '{unknown}' (parts: {})",
            ALL_PARTS.join(" ")
        ));
    }
    let parts: Vec<String> = ALL_PARTS
        .iter()
        .filter(|p| named.contains(p))
        .map(|p| p.to_string())
        .collect();
    if parts.is_empty() {
        return Err("BENCH is empty".into());
    }
    Ok(parts)
}
