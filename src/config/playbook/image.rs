//! `image = { from | archive, name, via }`: an OCI image shipped from the control node
//! to every host, content-addressed (a host that has the image ID is sent nothing).
//! Parsed and checked here; rendered in `plan::render`, shipped by `engine::image`.

use serde::Deserialize;
use toml::Spanned;

use super::Text;
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::source::SourceFile;

/// `image = { from = "drover-agent:{{ version }}", name = "localhost/drover-agent:{{ version }}" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// an image of the control node's Docker (or podman when there is no docker), by
    /// reference: `repo:tag` or an image ID (template)
    pub from: Option<Text>,
    /// a docker-archive (`docker save` output) on the control node, relative to the
    /// playbook (template)
    pub archive: Option<Text>,
    /// the reference the image gets on the host, e.g. `localhost/drover-agent:1.0.0`
    /// (template)
    pub name: Text,
    /// how the layers travel: "registry" (default: only the layers a host lacks, through
    /// a registry on the control node reached over an SSH reverse tunnel) or "load"
    /// (the whole archive into `podman load`)
    pub via: Option<Spanned<String>>,
}

/// How an image travels to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageVia {
    /// `podman pull` from a registry on the control node through an SSH reverse tunnel:
    /// the host fetches only the layers it lacks (measured faster for a second
    /// release, BENCHMARKS.md section E)
    #[default]
    Registry,
    /// the whole archive streamed into `podman load` on the exec's stdin
    Load,
}

impl ImageVia {
    /// The name as written in the playbook.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Load => "load",
        }
    }
}

/// Checks an image step: exactly one of `from` and `archive`, a known `via`. Returns
/// the way the image travels (the default when `via` is wrong: the problem is recorded).
pub(super) fn validate_image(
    source: &SourceFile,
    spec: &ImageSpec,
    name_span: &std::ops::Range<usize>,
    problems: &mut Diagnostics,
) -> ImageVia {
    match (&spec.from, &spec.archive) {
        (Some(_), None) | (None, Some(_)) => {}
        (Some(_), Some(archive)) => problems.push(Diagnostic::at(
            "playbook::image-source",
            source,
            archive.span(),
            "an image step takes `from` or `archive`, not both",
            "remove one: `from` is a local image, `archive` a `docker save` file",
        )),
        (None, None) => problems.push(Diagnostic::at(
            "playbook::image-source",
            source,
            name_span.clone(),
            "an image step needs `from` (a local image) or `archive` (a `docker save` file)",
            "expected `from = \"repo:tag\"` or `archive = \"path/to/image.tar\"`",
        )),
    }
    for field in [spec.from.as_ref(), spec.archive.as_ref(), Some(&spec.name)]
        .into_iter()
        .flatten()
    {
        if field.get_ref().trim().is_empty() {
            problems.push(Diagnostic::at(
                "playbook::image-empty",
                source,
                field.span(),
                "an empty image reference",
                "expected a reference such as \"localhost/drover-agent:1.0.0\"",
            ));
        }
    }
    match spec.via.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("registry") => ImageVia::Registry,
        Some("load") => ImageVia::Load,
        Some(other) => {
            let span = spec.via.as_ref().map_or(name_span.clone(), Spanned::span);
            problems.push(Diagnostic::at(
                "playbook::image-via",
                source,
                span,
                format!("unknown image transport `{other}`"),
                "expected \"registry\" or \"load\"",
            ));
            ImageVia::Registry
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::playbook::{Action, Playbook};
    use crate::config::source::SourceFile;

    use super::ImageVia;

    fn load(image: &str) -> Result<Playbook, String> {
        let text = format!("name = \"x\"\n[[steps]]\nname = \"img\"\nimage = {image}\n");
        Playbook::from_source(SourceFile::new("playbooks/p.toml", text))
            .map_err(|e| e.render(false))
    }

    #[test]
    fn an_image_step_from_a_local_image_defaults_to_the_registry_transport() {
        let p =
            load("{ from = \"drover-agent:{{ version }}\", name = \"localhost/a:1\" }").unwrap();
        assert_eq!(p.steps[0].action.kind(), "image");
        assert!(
            matches!(&p.steps[0].action, Action::Image(spec, ImageVia::Registry) if spec.from.is_some())
        );
        let p = load("{ archive = \"a.tar\", name = \"localhost/a:1\", via = \"load\" }").unwrap();
        assert!(matches!(
            &p.steps[0].action,
            Action::Image(_, ImageVia::Load)
        ));
    }

    #[test]
    fn an_image_step_with_both_sources_or_none_is_an_error_at_its_place() {
        let err =
            load("{ from = \"a:1\", archive = \"a.tar\", name = \"localhost/a:1\" }").unwrap_err();
        assert!(
            err.contains("playbooks/p.toml:4:35") && err.contains("not both"),
            "{err}"
        );
        let err = load("{ name = \"localhost/a:1\" }").unwrap_err();
        assert!(
            err.contains("playbooks/p.toml:3:8") && err.contains("needs `from`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_transport_or_an_empty_reference_points_at_its_place() {
        let err = load("{ from = \"a:1\", name = \"localhost/a:1\", via = \"scp\" }").unwrap_err();
        assert!(
            err.contains("playbooks/p.toml:4:55") && err.contains("unknown image transport `scp`"),
            "{err}"
        );
        let err = load("{ from = \"a:1\", name = \" \" }").unwrap_err();
        assert!(
            err.contains("playbooks/p.toml:4:32") && err.contains("empty image reference"),
            "{err}"
        );
    }
}
