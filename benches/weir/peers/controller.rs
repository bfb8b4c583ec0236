//! The controller under test as a local process, the same way for all three: its log, its
//! RSS every 0.2 s, its CPU time, a health endpoint on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::cluster::{
    alive, log_tail, proc_kib, process_cpu_seconds, sample_rss, stop_process, wait_answering,
};

/// A running controller. Its pid is recorded as the cluster's `pids/weir`, the controller slot
/// hack/cluster-down.sh stops first, so it never outlives the cluster should the benchmark be
/// killed.
pub struct Controller {
    pub pid: u32,
    pub name: String,
    pub log: PathBuf,
    pub rss_path: PathBuf,
    child: tokio::process::Child,
    sampler: tokio::task::JoinHandle<()>,
    pid_file: PathBuf,
}

/// A free port on loopback, for a metrics or health endpoint.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| die!("no free port: {e}"))
}

impl Controller {
    /// Starts `program args` with its output in `<dir>/<name>.log`; returns once `health_url`
    /// answers 200.
    pub async fn start(
        name: &str,
        program: &Path,
        args: &[String],
        health_url: &str,
        dir: &Path,
        cluster_dir: &Path,
    ) -> Controller {
        let log = dir.join(format!("{name}.log"));
        let file =
            std::fs::File::create(&log).unwrap_or_else(|e| die!("create {}: {e}", log.display()));
        let stderr = file.try_clone().unwrap_or_else(|e| die!("{e}"));
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| die!("cannot start {}: {e}", program.display()));
        let pid = child.id().unwrap_or_default();
        let pid_file = cluster_dir.join("pids/weir");
        let _ = std::fs::write(&pid_file, format!("{pid}\n"));
        let rss_path = dir.join("rss.tsv");
        let sampler = tokio::spawn(sample_rss(pid, rss_path.clone()));
        let controller = Controller {
            pid,
            name: name.to_string(),
            log,
            rss_path,
            child,
            sampler,
            pid_file,
        };
        controller.wait_healthy(health_url).await;
        log!("{name} ready (pid {pid}, {health_url})");
        controller
    }

    async fn wait_healthy(&self, url: &str) {
        wait_answering(url, |waiting_for| self.check_alive(waiting_for)).await;
    }

    /// Fails the benchmark, with the end of the controller's log, when it is gone.
    pub fn check_alive(&self, waiting_for: &str) {
        if !alive(self.pid) {
            die!(
                "{} (pid {}) exited while waiting for {waiting_for}; end of its log:\n{}",
                self.name,
                self.pid,
                log_tail(&self.log)
            );
        }
    }

    /// User+system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.pid).unwrap_or_else(|| {
            self.check_alive("its CPU time");
            die!(
                "cannot read the CPU time of {} (pid {})",
                self.name,
                self.pid
            )
        })
    }

    /// VmRSS now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_kib(self.pid, "VmRSS").unwrap_or_else(|| {
            self.check_alive("its RSS");
            die!("cannot read the RSS of {} (pid {})", self.name, self.pid)
        })
    }

    /// SIGTERM, up to 10 s to finish, then SIGKILL.
    pub async fn stop(self) {
        stop_process(self.child, self.pid, self.sampler, &self.pid_file).await;
    }
}
