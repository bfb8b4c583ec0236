//! The `kubectl weir` plugin, run through kubectl's own plugin discovery (the directory of
//! `kubectl-weir` first on PATH): status at each pause, actions that drive a release to its
//! end, abort and retry, pause and resume, `abort --group` on every member of a release
//! group, list and `-o json`, a watch that ends with the release, and the exit codes of
//! errors.

use crate::support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::microservice::{create, microservice};
use support::release::{DEADLINE, Harness, canary, condition, record_status, wait_ms};
use support::with_temp_ns;
use weir::api::{Microservice, Phase};

const V2: &str = "registry.example/app:2";

/// What one `kubectl weir` run returned.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `kubectl weir ARGS`, with the directory of the built `kubectl-weir` first on PATH.
async fn weir(args: &[&str]) -> Run {
    let plugin = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-weir"));
    let mut path = vec![plugin.parent().expect("a directory").to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let run = tokio::process::Command::new("kubectl")
        .arg("weir")
        .args(args)
        .env("PATH", std::env::join_paths(path).expect("a PATH"))
        .output();
    let output = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("kubectl weir {args:?} did not end within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("cannot run kubectl (is .cluster/bin on PATH?): {e}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `kubectl weir ARGS`, which must succeed; returns its stdout.
async fn weir_ok(args: &[&str]) -> String {
    let run = weir(args).await;
    assert_eq!(
        run.code,
        Some(0),
        "kubectl weir {args:?} failed: {}{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Runs `kubectl weir ARGS --output json` and parses what it prints.
async fn weir_json(args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    let stdout = weir_ok(&args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// True when some line of `text` consists of exactly these words, in order.
fn has_line(text: &str, words: &[&str]) -> bool {
    text.lines()
        .any(|line| line.split_whitespace().eq(words.iter().copied()))
}

fn assert_line(text: &str, words: &[&str]) {
    assert!(has_line(text, words), "no line {words:?} in:\n{text}");
}

fn four_steps() -> Value {
    json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}])
}

#[tokio::test]
async fn two_promotes_carry_a_canary_through_its_pauses_to_the_end() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(
            &client,
            &ns,
            "web",
            json!({"rollout": canary(four_steps())}),
        )
        .await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let revision = h.wait_release(&[&stable]).await.revision;
        h.wait_paused_at(1).await;

        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert_line(&status, &["Phase:", "Paused"]);
        assert_line(&status, &["Steps", "(step", "2", "of", "4):"]);
        assert_line(&status, &["✔", "1.", "setWeight", "20"]);
        assert_line(&status, &["▶", "2.", "pause", "until", "promoted"]);
        assert_line(&status, &["3.", "setWeight", "60"]);
        assert_line(&status, &["blue", "80%", "stable"]);
        assert_line(&status, &["green", "20%", "candidate"]);
        assert!(status.contains("Traffic (verified):"), "{status}");
        assert!(status.contains("ReleaseStarted"), "{status}");

        let promoted = weir_ok(&["promote", "web", "-n", &ns]).await;
        assert!(
            promoted.starts_with("web: promoted; now at step 3 of 4"),
            "{promoted}"
        );
        h.wait_paused_at(3).await;
        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert_line(&status, &["✔", "3.", "setWeight", "60"]);
        assert_line(&status, &["▶", "4.", "pause", "until", "promoted"]);
        assert_line(&status, &["blue", "40%", "stable"]);
        assert_line(&status, &["green", "60%", "candidate"]);

        let promoted = weir_ok(&["promote", "web", "-n", &ns]).await;
        assert!(promoted.starts_with("web: promoted; "), "{promoted}");
        h.wait_healthy_on(&revision).await;
        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert_line(&status, &["Phase:", "Healthy"]);
        assert_line(&status, &["Active", "slot:", "green"]);
        assert_line(&status, &["green", "100%", "active"]);
        assert!(
            status.contains("Steps (no release in progress):"),
            "{status}"
        );
        assert!(status.contains("Promoted"), "{status}");
    })
    .await;
}

#[tokio::test]
async fn list_and_json_output_show_a_paused_release() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(
            &client,
            &ns,
            "web",
            json!({"rollout": canary(four_steps())}),
        )
        .await;
        h.set_image(V2).await;
        h.wait_paused_at(1).await;

        let table = weir_ok(&["list", "-n", &ns]).await;
        assert_line(
            table.lines().next().unwrap(),
            &["NAME", "PHASE", "WEIGHT", "STEP", "IMAGE", "AGE"],
        );
        assert!(
            table.lines().any(|l| l
                .split_whitespace()
                .take(5)
                .eq(["web", "Paused", "20%", "2/4", V2])),
            "{table}"
        );

        let list = weir_json(&["list", "-n", &ns]).await;
        let item = &list["items"][0];
        assert_eq!(item["name"], "web", "{list:#}");
        assert_eq!(item["namespace"], ns.as_str(), "{list:#}");
        assert_eq!(item["phase"], "Paused", "{list:#}");
        assert_eq!(item["weight"], 20, "{list:#}");
        assert_eq!(item["step"], "2/4", "{list:#}");
        assert_eq!(item["image"], V2, "{list:#}");

        let everywhere = weir_json(&["list", "--all-namespaces"]).await;
        let items = everywhere["items"].as_array().expect("items");
        assert!(
            items.iter().any(|i| i["namespace"] == ns.as_str()),
            "{everywhere:#}"
        );

        let status = weir_json(&["status", "web", "-n", &ns]).await;
        assert_eq!(status["phase"], "Paused", "{status:#}");
        assert_eq!(status["release"]["step"], 2, "{status:#}");
        assert_eq!(status["release"]["stepCount"], 4, "{status:#}");
        assert_eq!(status["traffic"]["blue"], 80, "{status:#}");
        assert_eq!(status["traffic"]["green"], 20, "{status:#}");
        assert_eq!(status["traffic"]["verified"], true, "{status:#}");
        assert_eq!(status["steps"][1]["state"], "current", "{status:#}");
        assert_eq!(status["steps"][0]["state"], "done", "{status:#}");
        assert!(
            status["events"].as_array().is_some_and(|e| !e.is_empty()),
            "{status:#}"
        );

        let yaml = weir_ok(&["status", "web", "-n", &ns, "-o", "yaml"]).await;
        let yaml: Value = serde_yaml::from_str(&yaml).expect("YAML");
        assert_eq!(yaml["activeSlot"], "blue", "{yaml:#}");
    })
    .await;
}

#[tokio::test]
async fn promote_full_skips_the_remaining_steps() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(
            &client,
            &ns,
            "web",
            json!({"rollout": canary(four_steps())}),
        )
        .await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let revision = h.wait_release(&[&stable]).await.revision;
        h.wait_paused_at(1).await;

        let promoted = weir_ok(&["promote", "--full", "web", "-n", &ns]).await;
        assert!(promoted.starts_with("web: promoted fully; "), "{promoted}");
        let done = h.wait_healthy_on(&revision).await;
        assert_eq!(
            done.status.unwrap().active_slot,
            Some(weir::api::Slot::Green)
        );
    })
    .await;
}

#[tokio::test]
async fn abort_returns_to_stable_and_retry_runs_the_release_again() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(
            &client,
            &ns,
            "web",
            json!({"rollout": canary(four_steps())}),
        )
        .await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let revision = h.wait_release(&[&stable]).await.revision;
        h.wait_paused_at(1).await;

        let aborted = weir_ok(&["abort", "web", "-n", &ns]).await;
        assert!(aborted.starts_with("web: aborted; "), "{aborted}");
        h.wait_degraded("Aborted").await;
        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert_line(&status, &["Phase:", "Degraded"]);
        let aborted_line = |l: &str| l.split_whitespace().take(2).eq(["Aborted:", &revision]);
        assert!(status.lines().any(aborted_line), "{status}");
        assert_line(&status, &["blue", "100%", "active"]);

        let retried = weir_ok(&["retry", "web", "-n", &ns]).await;
        assert!(
            retried.starts_with("web: retrying; now at step "),
            "{retried}"
        );
        let again = h.wait_paused_at(1).await;
        assert_eq!(again.status.unwrap().release.unwrap().revision, revision);
        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert_line(&status, &["▶", "2.", "pause", "until", "promoted"]);
    })
    .await;
}

#[tokio::test]
async fn abort_group_sets_the_abort_on_every_member_of_the_group() {
    with_temp_ns(|client, ns| async move {
        let mut rollout = canary(four_steps());
        rollout["group"] = json!("shop");
        let spec = json!({"rollout": rollout});
        let backend = Harness::start(&client, &ns, "backend", spec.clone()).await;
        // The second member, on the same operator and fake gateway; and one outside it.
        let frontend = create(&client, &ns, &microservice("frontend", spec)).await;
        create(&client, &ns, &microservice("other", json!({}))).await;
        let what = "frontend: the first version deployed";
        wait_ms(&frontend, "frontend", DEADLINE, what, |ms| {
            ms.status.as_ref().is_some_and(|s| {
                s.observed_generation == ms.metadata.generation
                    && s.phase == Some(Phase::Healthy)
                    && s.stable_revision.is_some()
                    && s.release.is_none()
            })
        })
        .await;
        let frontend_log = record_status(&frontend, "frontend").await;

        backend.set_image(V2).await;
        support::microservice::edit_spec(&frontend, "frontend", json!({"image": V2})).await;
        // Both wait for a promote at the pause: the group's barrier lets them through
        // step 1 together.
        backend.wait_paused_at(1).await;
        let paused = "frontend: Paused at step 1";
        wait_ms(&frontend, "frontend", DEADLINE, paused, |ms| {
            ms.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Paused)
                    && s.release.as_ref().is_some_and(|r| r.step_index == 1)
            })
        })
        .await;

        let aborted = weir_ok(&["abort", "--group", "shop", "-n", &ns]).await;
        let lines: Vec<&str> = aborted.lines().collect();
        assert_eq!(lines.len(), 2, "one line per member: {aborted}");
        assert!(lines[0].starts_with("backend: aborted; "), "{aborted}");
        assert!(lines[1].starts_with("frontend: aborted; "), "{aborted}");

        // The same value reached both, and Weir handled it on both.
        let abort =
            |s: &support::release::StatusView| s.action.clone().filter(|a| a.starts_with("abort@"));
        let (_, on_backend) = backend
            .log
            .wait_seen("the abort annotation", |s| abort(s).is_some())
            .await;
        let (_, on_frontend) = frontend_log
            .wait_seen("the abort annotation", |s| abort(s).is_some())
            .await;
        let value = abort(&on_backend.value).unwrap();
        assert_eq!(abort(&on_frontend.value), Some(value.clone()));
        backend.wait_handled(&value).await;
        frontend_log
            .wait_until("the annotation removed", |s| s.action.is_none())
            .await;

        backend.wait_degraded("Aborted").await;
        // The frontend's own abort, or the group's, whichever Weir saw first.
        let what = "frontend: Degraded after an abort, release over";
        let over = wait_ms(
            &frontend,
            "frontend",
            DEADLINE,
            what,
            |ms: &Microservice| {
                ms.status.as_ref().is_some_and(|s| s.release.is_none())
                    && ms.status.as_ref().and_then(|s| s.phase) == Some(Phase::Degraded)
                    && condition(ms, "Degraded").is_some_and(|c| {
                        c.status == "True"
                            && ["Aborted", "GroupAborted"].contains(&c.reason.as_str())
                    })
            },
        )
        .await;
        assert!(over.status.unwrap().aborted_revision.is_some());
        let other = frontend.get("other").await.expect("get other");
        assert!(
            !other
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key("weir.dev/action"),
            "a Microservice outside the group is left alone"
        );

        let settled = weir(&["promote", "--group", "shop", "-n", &ns]).await;
        assert_eq!(settled.code, Some(1), "{}", settled.stderr);
        assert!(
            settled
                .stderr
                .contains(r#"no member of release group "shop""#),
            "{}",
            settled.stderr
        );
        let none = weir(&["abort", "--group", "nothing", "-n", &ns]).await;
        assert_eq!(none.code, Some(1), "{}", none.stderr);
        let message =
            format!(r#"no microservice in namespace "{ns}" is in release group "nothing""#);
        assert!(none.stderr.contains(&message), "{}", none.stderr);
    })
    .await;
}

#[tokio::test]
async fn pause_holds_a_timed_step_until_resume() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 60}]);
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(steps)})).await;
        h.set_image(V2).await;
        h.wait_release_where("at the timed pause", |phase, r| {
            phase == Some(Phase::Progressing) && r.step_index == 1
        })
        .await;

        let paused = weir_ok(&["pause", "web", "-n", &ns]).await;
        assert!(
            paused.starts_with("web: paused; now at step 2 of 3"),
            "{paused}"
        );
        assert!(paused.contains("held"), "{paused}");
        h.wait_release_where("paused by hand", |phase, r| {
            phase == Some(Phase::Paused) && r.paused
        })
        .await;
        let status = weir_ok(&["status", "web", "-n", &ns]).await;
        assert!(
            status.contains("Steps (step 2 of 3, paused by hand):"),
            "{status}"
        );

        let resumed = weir_ok(&["resume", "web", "-n", &ns]).await;
        assert!(
            resumed.starts_with("web: resumed; now at step 2 of 3"),
            "{resumed}"
        );
        h.wait_release_where("resumed", |phase, r| {
            phase == Some(Phase::Progressing) && !r.paused && r.step_index == 1
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_watch_that_is_not_a_terminal_ends_with_the_release() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]);
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(steps)})).await;
        h.set_image(V2).await;

        let watched = weir_ok(&["status", "web", "-w", "-n", &ns]).await;
        let last = watched.split("\nName:").last().expect("a render");
        assert_line(last, &["Phase:", "Healthy"]);
        assert_line(last, &["green", "100%", "active"]);
        assert!(
            last.contains("Steps (no release in progress):"),
            "{watched}"
        );
        assert!(has_line(&watched, &["Phase:", "Progressing"]), "{watched}");
        assert!(
            !watched.contains('\x1b'),
            "no screen clearing outside a terminal: {watched}"
        );
    })
    .await;
}

#[tokio::test]
async fn errors_say_what_is_wrong_and_exit_with_1_or_2() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        create(&client, &ns, &microservice("web", json!({}))).await;

        let missing = weir(&["status", "nope", "-n", &ns]).await;
        assert_eq!(missing.code, Some(1), "{}", missing.stderr);
        let message = format!("microservice \"nope\" not found in namespace \"{ns}\"");
        assert!(missing.stderr.contains(&message), "{}", missing.stderr);
        let missing = weir(&["abort", "nope", "-n", &ns]).await;
        assert_eq!(missing.code, Some(1), "{}", missing.stderr);
        assert!(missing.stderr.contains(&message), "{}", missing.stderr);

        let idle = weir(&["promote", "web", "-n", &ns]).await;
        assert_eq!(idle.code, Some(1), "{}", idle.stderr);
        assert!(
            idle.stderr.contains("web has no release in progress"),
            "{}",
            idle.stderr
        );
        let idle = weir(&["retry", "web", "-n", &ns]).await;
        assert_eq!(idle.code, Some(1), "{}", idle.stderr);
        assert!(
            idle.stderr.contains("no aborted release to retry"),
            "{}",
            idle.stderr
        );

        let usage = weir(&["status", "web", "--no-such-flag", "-n", &ns]).await;
        assert_eq!(usage.code, Some(2), "{}", usage.stderr);
        let usage = weir(&["status", "web", "-o", "wide", "-n", &ns]).await;
        assert_eq!(usage.code, Some(2), "{}", usage.stderr);

        let unreachable = unreachable_kubeconfig();
        let down = weir(&["list", "--kubeconfig", &unreachable]).await;
        assert_eq!(down.code, Some(1), "{}", down.stderr);
        assert!(
            down.stderr.contains("cannot list microservices"),
            "{}",
            down.stderr
        );
        assert!(down.stdout.is_empty(), "{}", down.stdout);
    })
    .await;
}

/// A kubeconfig whose API server nothing listens on.
fn unreachable_kubeconfig() -> String {
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "down", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "nobody", "user": {"token": "none"}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "nobody"}}],
        "current-context": "down"
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("unreachable-kubeconfig.json");
    std::fs::write(&path, kubeconfig.to_string()).expect("write the kubeconfig");
    path.to_string_lossy().into_owned()
}
