//! The image step at the connection seam: the host is the local `sh` with a fake
//! `podman` (an image store in a directory: a file per image ID holding its names), the
//! image a docker-archive made here; `via = "load"`, as `registry` needs a forward.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::*;
use crate::plan::steps::{ImageSource, ImageVia};

const ID: &str = "4c1e0b4e0d8d5b1f2c3a4b5c6d7e8f90112233445566778899aabbccddeeff00";

/// `podman` as the image scripts use it, over the store `store`.
const FAKE_PODMAN: &str = r#"#!/bin/sh
store=STORE
echo "$*" >> "$store.calls"
case "$1 $2" in
  "image inspect")
    for f in "$store"/*; do
      [ -f "$f" ] && grep -qxF -- "$5" "$f" && { basename "$f"; exit 0; }
    done
    exit 125 ;;
  "image exists") [ -f "$store/$3" ]; exit ;;
esac
case "$1" in
  load)
    cat > "$store.in"
    id=$(tar -xOf "$store.in" manifest.json | sed 's/.*"Config":"\([0-9a-f]*\)\.json".*/\1/')
    touch "$store/$id"; echo "Loaded image: $id" ;;
  tag) echo "$3" >> "$store/$2" ;;
  *) echo "fake podman: $*" >&2; exit 1 ;;
esac
"#;

/// A scratch dir with the fake podman on a `PATH` of its own and an archive of image
/// [`ID`] (its manifest and 200 kB of layer).
struct Host {
    dir: tempfile::TempDir,
    archive: PathBuf,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (bin, store) = (dir.path().join("bin"), dir.path().join("store"));
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let podman = bin.join("podman");
        let script = FAKE_PODMAN.replace("STORE", &crate::shell::quote(&store.to_string_lossy()));
        std::fs::write(&podman, script).unwrap();
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&podman)
            .status()
            .unwrap();
        let image = dir.path().join("image");
        std::fs::create_dir_all(&image).unwrap();
        let manifest = format!(
            "[{{\"Config\":\"{ID}.json\",\"RepoTags\":[\"agent:1\"],\"Layers\":[\"l/layer.tar\"]}}]"
        );
        std::fs::write(image.join("manifest.json"), manifest).unwrap();
        std::fs::write(image.join("layer.tar"), vec![7u8; 200_000]).unwrap();
        let archive = dir.path().join("agent.tar");
        let made = std::process::Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&image)
            .args(["manifest.json", "layer.tar"])
            .status()
            .unwrap();
        assert!(made.success());
        Self { dir, archive }
    }

    fn shell(&self) -> LocalShell {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.path().join("bin")];
        dirs.extend(std::env::split_paths(&path));
        LocalShell {
            path: Some(std::env::join_paths(dirs).unwrap()),
            ..LocalShell::default()
        }
    }

    /// The names the store holds for image [`ID`].
    fn names(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("store").join(ID)).unwrap_or_default()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("store.calls")).unwrap_or_default()
    }
}

fn image_step(archive: &Path, name: &str) -> TargetPlan {
    let mut step = step(
        "agent image",
        Some(StepSpec::Image {
            source: ImageSource::Archive(archive.to_path_buf()),
            name: name.into(),
            via: ImageVia::Load,
        }),
    );
    step.kind = "image";
    target(vec![step])
}

#[tokio::test]
async fn an_image_the_host_lacks_is_loaded_once_then_left_alone_or_only_tagged() {
    let host = Host::new();
    let size = std::fs::metadata(&host.archive).unwrap().len();
    let options = options();
    let plan = image_step(&host.archive, "localhost/agent:1");

    let shell = host.shell();
    let first = run_target(&shell, &super::host(), &plan, &options, &[]).await;
    let step = &first.steps[0];
    assert_eq!(step.status, StepStatus::Changed, "{step:?}");
    assert_eq!(step.bytes_sent, Some(size), "the whole archive went");
    assert_eq!(shell.execs.load(Ordering::SeqCst), 2, "probe, then load");
    assert_eq!(host.names(), "localhost/agent:1\n");

    let again = run_target(&shell, &super::host(), &plan, &options, &[]).await;
    assert_eq!(
        again.steps[0].status,
        StepStatus::Ok,
        "{:?}",
        again.steps[0]
    );
    assert_eq!(again.steps[0].bytes_sent, Some(0));
    assert_eq!(
        again.steps[0].stdout,
        format!("image sha256:{ID}\non the host: present\n")
    );
    assert_eq!(host.calls().matches("load").count(), 1, "{}", host.calls());

    let renamed = image_step(&host.archive, "localhost/copy:1");
    let tagged = run_target(&shell, &super::host(), &renamed, &options, &[]).await;
    assert_eq!(tagged.steps[0].status, StepStatus::Changed);
    assert_eq!(tagged.steps[0].bytes_sent, Some(0), "only tagged");
    assert_eq!(host.names(), "localhost/agent:1\nlocalhost/copy:1\n");
}

#[tokio::test]
async fn a_dry_run_reports_the_image_it_would_send_and_sends_nothing() {
    let host = Host::new();
    let options = StepOptions {
        dry_run: true,
        ..StepOptions::default()
    };
    let plan = image_step(&host.archive, "localhost/agent:1");
    let out = run_target(&host.shell(), &super::host(), &plan, &options, &[]).await;
    assert_eq!(
        out.steps[0].status,
        StepStatus::Changed,
        "{:?}",
        out.steps[0]
    );
    assert_eq!(out.steps[0].bytes_sent, Some(0));
    assert!(!host.calls().contains("load") && host.names().is_empty());
}

#[tokio::test]
async fn an_archive_that_is_not_an_image_fails_before_the_host_is_touched() {
    let host = Host::new();
    let junk = host.dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let shell = host.shell();
    let plan = image_step(&junk, "localhost/agent:1");
    let out = run_target(&shell, &super::host(), &plan, &options(), &[]).await;
    let step = &out.steps[0];
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.stderr.contains("failed to read image archive"),
        "{}",
        step.stderr
    );
    assert_eq!(shell.execs.load(Ordering::SeqCst), 0);
}
