//! The host side of the `image` step: scripts that compare, tag, load or pull an image
//! with the host's rootful podman. Pure: values in, script text out.
//!
//! The engine (`engine::image`) runs them in this order, each as its own exec:
//!
//! | script | stdin | stdout line | meaning |
//! |---|---|---|---|
//! | [`probe`] | none | `__drover_image__ present` | `NAME` already is the image: nothing to send |
//! | | | `__drover_image__ tagged` | the image was there under another name: tagged `NAME` (changed) |
//! | | | `__drover_image__ absent` | the host lacks the image: send it |
//! | [`load`] | the docker-archive | changed marker | loaded, the ID checked, tagged `NAME` |
//! | [`pull`] | none | changed marker | pulled from the tunnelled registry, ID checked, tagged `NAME`, the registry's name removed |
//!
//! An image ID is the 64 hex digits of the image's config digest, as `podman image
//! inspect --format '{{.Id}}'` prints it. A script that finds another ID than the one
//! wanted after loading or pulling fails and leaves `NAME` untouched.

use std::fmt::Write as _;

use super::shell::{prelude, q};
use super::{CHANGED_MARKER, ImageSource, StepError};

/// The stdout line prefix of [`probe`]'s answer.
pub const IMAGE_MARKER: &str = "__drover_image__";

/// What [`probe`] found on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// `NAME` is the image already
    Present,
    /// the image was there under another name and is now tagged `NAME`
    Tagged,
    /// the host lacks the image
    Absent,
}

/// Reads [`probe`]'s answer from its stdout.
#[must_use]
pub fn probed(stdout: &str) -> Option<Probed> {
    stdout
        .lines()
        .find_map(|l| match l.strip_prefix(IMAGE_MARKER)?.trim() {
            "present" => Some(Probed::Present),
            "tagged" => Some(Probed::Tagged),
            "absent" => Some(Probed::Absent),
            _ => None,
        })
}

/// The host must have podman; everything after this runs as root.
fn podman_prelude(dry_run: bool) -> String {
    let mut s = prelude(dry_run);
    s.push_str(
        "command -v podman >/dev/null 2>&1 || fail 'podman is not installed on this host'\n",
    );
    s
}

/// Compares `name` on the host with image `id`; tags it when the image is there under
/// another name (not in dry-run). See the module table for the answer.
#[must_use]
pub fn probe(name: &str, id: &str, dry_run: bool) -> String {
    let mut s = podman_prelude(dry_run);
    let _ = write!(
        s,
        "want={id}\nname={name}\n\
         have=$(podman image inspect --format '{{{{.Id}}}}' \"$name\" 2>/dev/null || true)\n\
         if [ \"$have\" = \"$want\" ]; then echo '{IMAGE_MARKER} present'; exit 0; fi\n\
         if podman image exists \"$want\" 2>/dev/null; then\n  \
           changed\n  \
           if [ \"$DRY\" = 0 ]; then podman tag \"$want\" \"$name\" || fail \"cannot tag $want as $name\"; fi\n  \
           echo '{IMAGE_MARKER} tagged'; exit 0\n\
         fi\n\
         [ \"$DRY\" = 0 ] || changed\n\
         echo '{IMAGE_MARKER} absent'\n",
        id = q(id),
        name = q(name),
    );
    s
}

/// Loads the docker-archive on stdin, checks that it held image `id`, tags it `name`.
#[must_use]
pub fn load(name: &str, id: &str) -> String {
    let mut s = podman_prelude(false);
    let _ = write!(
        s,
        "want={id}\nname={name}\n\
         out=$(podman load 2>&1) || {{ printf '%s\\n' \"$out\" >&2; fail 'podman load failed'; }}\n\
         podman image exists \"$want\" || fail \"the archive sent does not hold image $want\"\n\
         podman tag \"$want\" \"$name\" || fail \"cannot tag $want as $name\"\n\
         echo {CHANGED_MARKER}\n",
        id = q(id),
        name = q(name),
    );
    s
}

/// Pulls `remote` (the control node's registry, through the SSH tunnel: plain HTTP on
/// the host's loopback), checks that it is image `id`, tags it `name` and removes the
/// `remote` name again (the tunnel's port is gone after this run).
#[must_use]
pub fn pull(name: &str, id: &str, remote: &str) -> String {
    let mut s = podman_prelude(false);
    let _ = write!(
        s,
        "want={id}\nname={name}\nremote={remote}\n\
         out=$(podman pull --quiet --tls-verify=false \"$remote\" 2>&1) || {{ printf '%s\\n' \"$out\" >&2; fail \"podman pull $remote failed\"; }}\n\
         got=$(podman image inspect --format '{{{{.Id}}}}' \"$remote\") || fail \"cannot inspect $remote\"\n\
         if [ \"$got\" != \"$want\" ]; then podman untag \"$got\" \"$remote\" >/dev/null 2>&1; fail \"pulled image $got, expected $want\"; fi\n\
         podman tag \"$want\" \"$name\" || fail \"cannot tag $want as $name\"\n\
         podman untag \"$want\" \"$remote\" >/dev/null 2>&1 || true\n\
         echo {CHANGED_MARKER}\n",
        id = q(id),
        name = q(name),
        remote = q(remote),
    );
    s
}

/// An image reference as podman and docker take it (`[host[:port]/]path[:tag][@digest]`,
/// or a bare ID): ASCII letters, digits and `._-:/@`, not starting with `-`, `/`, `:`
/// or `.`, no `//`, at most 255 characters.
///
/// # Errors
/// What is wrong, quoting the value.
pub(super) fn check_reference(field: &'static str, reference: &str) -> Result<(), StepError> {
    let bad = |problem: String| Err(StepError { field, problem });
    if reference.is_empty() || reference.len() > 255 {
        return bad(format!(
            "{reference:?} is not an image reference (1 to 255 characters)"
        ));
    }
    if let Some(c) = reference
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-:/@".contains(*c)))
    {
        return bad(format!(
            "{reference:?} is not an image reference: {c:?} is not allowed"
        ));
    }
    if reference.starts_with(['-', '/', ':', '.']) || reference.contains("//") {
        return bad(format!("{reference:?} is not an image reference"));
    }
    Ok(())
}

/// Checks an image step's values: references well formed, no NUL in an archive path.
///
/// # Errors
/// The first problem found.
pub(super) fn check_spec(source: &ImageSource, name: &str) -> Result<(), StepError> {
    check_reference("name", name)?;
    match source {
        ImageSource::Local(from) => check_reference("from", from),
        ImageSource::Archive(path) if path.as_os_str().as_encoded_bytes().contains(&0) => {
            Err(StepError {
                field: "archive",
                problem: "contains a NUL byte".into(),
            })
        }
        ImageSource::Archive(_) => Ok(()),
    }
}

/// An image ID: 64 lowercase hex digits.
#[must_use]
pub fn is_image_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4c1e0b4e0d8d5b1f2c3a4b5c6d7e8f90112233445566778899aabbccddeeff00";

    #[test]
    fn probe_quotes_its_values_and_tags_only_in_a_real_run() {
        let s = probe("localhost/agent:1.0.0", ID, false);
        assert!(s.contains(&format!("want={ID}\n")), "{s}");
        assert!(s.contains("name='localhost/agent:1.0.0'\n"), "{s}");
        assert!(s.contains("--format '{{.Id}}'"), "{s}");
        assert!(s.contains("if [ \"$DRY\" = 0 ]; then podman tag"), "{s}");
        let s = probe("a b", ID, true);
        assert!(
            s.contains("name='a b'\n") && s.starts_with("DRY=1\n"),
            "{s}"
        );
    }

    #[test]
    fn probe_answers_are_read_back_and_other_lines_ignored() {
        assert_eq!(probed("x\n__drover_image__ absent\n"), Some(Probed::Absent));
        assert_eq!(
            probed("__drover_changed__\n__drover_image__ tagged\n"),
            Some(Probed::Tagged)
        );
        assert_eq!(probed("__drover_image__ present"), Some(Probed::Present));
        assert_eq!(probed("__drover_image__ maybe\n"), None);
        assert_eq!(probed(""), None);
    }

    #[test]
    fn load_and_pull_check_the_id_before_they_tag() {
        let s = load("localhost/agent:2", ID);
        let (check, tag) = (
            s.find("podman image exists").unwrap(),
            s.find("podman tag").unwrap(),
        );
        assert!(check < tag && s.contains("podman load"), "{s}");
        let s = pull(
            "localhost/agent:2",
            ID,
            "127.0.0.1:40001/drover/images:sha256-x",
        );
        assert!(
            s.contains("remote='127.0.0.1:40001/drover/images:sha256-x'\n"),
            "{s}"
        );
        assert!(s.contains("--tls-verify=false"), "{s}");
        let (check, tag) = (
            s.find("if [ \"$got\" != \"$want\" ]").unwrap(),
            s.find("podman tag").unwrap(),
        );
        assert!(check < tag, "{s}");
        assert!(s.contains("podman untag \"$want\" \"$remote\""), "{s}");
    }

    #[test]
    fn references_with_shell_or_odd_characters_are_refused() {
        for ok in [
            "localhost/drover-agent:1.0.0",
            "127.0.0.1:5000/a/b:c",
            "a@sha256:00",
            ID,
        ] {
            assert!(check_reference("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a;rm", "-x", "/a", "a//b", "a$(x)", "é"] {
            assert!(check_reference("name", bad).is_err(), "{bad}");
        }
        assert!(is_image_id(ID) && !is_image_id("sha256:00") && !is_image_id(&ID.to_uppercase()));
    }
}
