//! The operator image `make image` built (hack/image.sh, buildah from the Dockerfile's runtime
//! stage): its config says what the chart relies on (entrypoint `weir run`, user 65532), its
//! root filesystem has no shell, and its binary runs from that filesystem as the image's
//! non-root user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The image `make image` tags, unless `IMAGE` names another.
fn image() -> String {
    std::env::var("IMAGE").unwrap_or_else(|_| "localhost/weir:dev".into())
}

fn buildah(args: &[&str]) -> Output {
    let output = Command::new("buildah")
        .args(["--storage-driver", "vfs"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run buildah ({e}): `make image` installs it"));
    assert!(
        output.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A working container of the image, mounted; removed when dropped.
struct Mounted {
    container: String,
    root: PathBuf,
}

impl Mounted {
    fn new(image: &str) -> Mounted {
        let container = text(&buildah(&["from", "--pull-never", image]));
        let root = PathBuf::from(text(&buildah(&["mount", &container])));
        Mounted { container, root }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("buildah")
            .args(["--storage-driver", "vfs", "rm", &self.container])
            .output();
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs `/usr/local/bin/weir ARGS` inside `root` as user and group 65532.
fn weir_in(root: &Path, args: &[&str]) -> Output {
    Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(root)
        .arg("/usr/local/bin/weir")
        .args(args)
        .output()
        .expect("chroot (the tests run as root)")
}

#[test]
fn the_image_runs_weir_as_its_nonroot_user_without_a_shell() {
    let image = image();
    let inspected = buildah(&["inspect", "--type", "image", &image]);
    let inspected: Value = serde_json::from_slice(&inspected.stdout).expect("JSON");
    let config = &inspected["OCIv1"]["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/weir", "run"]),
        "{config:#}"
    );
    assert_eq!(config["User"], "65532:65532", "{config:#}");
    assert!(
        config["ExposedPorts"].get("8080/tcp").is_some(),
        "{config:#}"
    );

    let mounted = Mounted::new(&image);
    for shell in [
        "bin/sh",
        "bin/bash",
        "bin/dash",
        "usr/bin/sh",
        "bin/busybox",
    ] {
        let path = mounted.root.join(shell);
        assert!(!path.exists(), "{image} has a shell: /{shell}");
    }

    let version = weir_in(&mounted.root, &["--version"]);
    assert!(version.status.success(), "{version:?}");
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(version.trim(), concat!("weir ", env!("CARGO_PKG_VERSION")));

    let crd = weir_in(&mounted.root, &["crd"]);
    assert!(crd.status.success(), "{crd:?}");
    let shipped: String = ["microservices", "metrictemplates"]
        .iter()
        .map(|plural| {
            let file = format!("crds/{plural}.weir.dev.yaml");
            let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
                .expect("crds/");
            format!("---\n{text}")
        })
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&crd.stdout),
        shipped,
        "the image's binary prints the CRD in crds/: is the image older than the sources? run `make image`"
    );
}
