//! The control node's container engine: Docker, or podman when there is no docker.
//! Finds an image's ID, saves it as a docker-archive, loads an archive, pushes to the
//! run's registry. Every value goes as its own argument (no shell).

use std::path::Path;
use std::process::Stdio;

use super::ImageError;
use crate::plan::steps::image::is_image_id;

/// The local engine's command: `docker` when on `PATH`, else `podman`.
pub(super) fn engine() -> Result<&'static str, ImageError> {
    ["docker", "podman"]
        .into_iter()
        .find(|tool| on_path(tool))
        .ok_or(ImageError::NoEngine)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Runs `tool args…`; its stdout, or an error naming `what` with its stderr.
pub(super) async fn run(tool: &str, args: &[&str], what: &str) -> Result<String, ImageError> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ImageError::Local {
            what: what.to_string(),
            reason: format!("cannot run {tool}: {e}"),
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    Err(ImageError::Local {
        what: what.to_string(),
        reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// The ID (64 hex digits, no `sha256:`) of a local image, by reference or ID.
pub(super) async fn image_id(tool: &str, reference: &str) -> Result<String, ImageError> {
    let printed = run(
        tool,
        &["image", "inspect", "--format", "{{.Id}}", "--", reference],
        &format!("find image {reference}"),
    )
    .await
    .map_err(|e| match e {
        ImageError::Local { reason, .. } => ImageError::NotFound {
            reference: reference.to_string(),
            reason,
        },
        other => other,
    })?;
    normalized_id(&printed).ok_or_else(|| ImageError::Local {
        what: format!("find image {reference}"),
        reason: format!("{tool} printed {printed:?}, not an image ID"),
    })
}

/// `sha256:HEX`, `HEX`, `HEX.json` or `blobs/sha256/HEX` as the bare 64 hex digits.
pub(super) fn normalized_id(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix("blobs/sha256/").unwrap_or(text);
    let text = text.strip_prefix("sha256:").unwrap_or(text);
    let text = text.strip_suffix(".json").unwrap_or(text);
    is_image_id(text).then(|| text.to_string())
}

/// The ID of the (first) image in a docker-archive: its config digest, from the
/// archive's `manifest.json` (read with `tar`, nothing unpacked to disk).
pub(super) async fn archive_id(path: &Path) -> Result<String, ImageError> {
    let bad = |reason: String| ImageError::Archive {
        path: path.to_path_buf(),
        reason,
    };
    let manifest = run(
        "tar",
        &["-xOf", &path.to_string_lossy(), "manifest.json"],
        &format!("read {}", path.display()),
    )
    .await
    .map_err(|e| bad(e.to_string()))?;
    config_of_manifest(&manifest).ok_or_else(|| {
        bad("its manifest.json names no image config (not a docker-archive?)".into())
    })
}

/// The config digest of the first image of a docker-archive's `manifest.json`.
pub(super) fn config_of_manifest(manifest: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(manifest).ok()?;
    normalized_id(value.get(0)?.get("Config")?.as_str()?)
}

/// Saves image `id` as a docker-archive at `dest` (written aside, then renamed).
pub(super) async fn save(tool: &str, id: &str, dest: &Path) -> Result<(), ImageError> {
    let partial = dest.with_extension("partial");
    let partial_text = partial.to_string_lossy().into_owned();
    let mut args = vec!["save", "-o", partial_text.as_str()];
    if tool == "podman" {
        args.extend(["--format", "docker-archive"]);
    }
    args.push(id);
    run(tool, &args, &format!("save image {id}")).await?;
    tokio::fs::rename(&partial, dest)
        .await
        .map_err(|e| ImageError::Local {
            what: format!("save image {id}"),
            reason: e.to_string(),
        })
}

/// Loads a docker-archive into the local engine (to push it), checking it holds `id`.
pub(super) async fn load(tool: &str, path: &Path, id: &str) -> Result<(), ImageError> {
    run(
        tool,
        &["load", "-q", "-i", &path.to_string_lossy()],
        &format!("load {}", path.display()),
    )
    .await?;
    let loaded = image_id(tool, id).await?;
    if loaded == id {
        Ok(())
    } else {
        Err(ImageError::Archive {
            path: path.to_path_buf(),
            reason: format!("loaded image {loaded}, expected {id}"),
        })
    }
}

/// Pushes image `id` to `remote` (`127.0.0.1:PORT/REPO:TAG`): tagged, pushed (only the
/// layers the registry lacks travel), untagged again.
pub(super) async fn push(tool: &str, id: &str, remote: &str) -> Result<(), ImageError> {
    let what = format!("push image {id} to the run's registry");
    run(tool, &["tag", id, remote], &what).await?;
    let pushed = if tool == "podman" {
        run(tool, &["push", "--tls-verify=false", remote], &what).await
    } else {
        run(tool, &["push", remote], &what).await
    };
    let _ = run(tool, &["rmi", remote], &what).await;
    pushed.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4c1e0b4e0d8d5b1f2c3a4b5c6d7e8f90112233445566778899aabbccddeeff00";

    #[test]
    fn ids_are_read_in_every_spelling_engines_and_archives_use() {
        for text in [
            format!("sha256:{HEX}\n"),
            HEX.to_string(),
            format!("{HEX}.json"),
            format!("blobs/sha256/{HEX}"),
        ] {
            assert_eq!(normalized_id(&text).as_deref(), Some(HEX), "{text}");
        }
        assert_eq!(normalized_id("sha256:abc"), None);
    }

    #[test]
    fn an_archive_manifest_gives_its_first_image_config() {
        let manifest = format!(
            "[{{\"Config\":\"{HEX}.json\",\"RepoTags\":[\"drover-agent:1.0.0\"],\"Layers\":[\"a/layer.tar\"]}}]"
        );
        assert_eq!(config_of_manifest(&manifest).as_deref(), Some(HEX));
        assert_eq!(config_of_manifest("[]"), None);
        assert_eq!(config_of_manifest("{not json"), None);
    }
}
