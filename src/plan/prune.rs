//! Release pruning (`keep_releases = N`): after a successful switch or deploy, the
//! releases under `/opt/drover/<tenant>/releases/` beyond the newest N are removed.
//!
//! "Newest" is by the release folder's modification time (when it was landed). Never
//! removed, whatever N: the release either color points at (`version` and
//! `previous_version` in `state.json`, and the target of every symlink directly in
//! `/opt/drover/<tenant>/`, such as the reference playbook's `blue` and `green`), the
//! release just deployed, and anything that is not a plain folder with a release-like
//! name (uploads in progress, `*.drover-tmp.*`, links). Protected releases count
//! toward N, so what remains is the newest N plus any older live release.
//!
//! The script prints one line per release it looked at: `kept NAME (live)`,
//! `removed NAME`, or in dry-run `would remove NAME`.

use super::layout::TenantLayout;
use crate::shell::quote;

/// Where a tenant's releases, links and state live (fields, so a test can point them
/// at a scratch folder).
#[derive(Debug, Clone)]
pub struct PrunePaths {
    /// `/opt/drover/<tenant>/releases`
    pub releases: String,
    /// `/opt/drover/<tenant>`: its symlinks name live releases
    pub base: String,
    /// `/var/lib/drover/<tenant>/state.json`
    pub state: String,
}

impl PrunePaths {
    /// The documented layout of `tenant`.
    #[must_use]
    pub fn of(tenant: &str) -> Self {
        let layout = TenantLayout::of(tenant);
        let releases = layout.releases_dir();
        let base = releases
            .strip_suffix("/releases")
            .unwrap_or(&releases)
            .to_owned();
        Self {
            releases,
            base,
            state: layout.state,
        }
    }
}

/// The pruning script: keeps the newest `keep` releases plus the live ones and
/// `deployed`; removes the rest (lists them, in dry-run).
#[must_use]
pub fn prune(paths: &PrunePaths, keep: u32, deployed: &str, dry_run: bool) -> String {
    format!(
        "set -u; set -f\n\
         dir={dir}; base={base}; st={st}; keep={keep}; dry={dry}\n\
         [ -d \"$dir\" ] || exit 0\n\
         real=$(readlink -f -- \"$dir\") || exit 0\n\
         protect=\" \"{deployed}\" \"\n\
         if [ -r \"$st\" ]; then\n  \
           for v in $(grep -o '\"\\(previous_\\)\\{{0,1\\}}version\": *\"[^\"]*\"' \"$st\" | sed 's/.*\"\\([^\"]*\\)\"$/\\1/'); do protect=\"$protect$v \"; done\n\
         fi\n\
         set +f\n\
         for l in \"$base\"/*; do\n  \
           [ -L \"$l\" ] || continue\n  \
           t=$(readlink -f -- \"$l\") || continue\n  \
           case \"$t\" in \"$real\"/*) r=${{t#\"$real\"/}}; protect=\"$protect${{r%%/*}} \" ;; esac\n\
         done\n\
         n=0\n\
         ls -1t -- \"$dir\" | while IFS= read -r name; do\n  \
           case \"$name\" in *.drover-tmp.*|*.drover-old.*|.*|*[!A-Za-z0-9._+-]*) continue ;; esac\n  \
           [ -d \"$dir/$name\" ] && [ ! -L \"$dir/$name\" ] || continue\n  \
           n=$((n + 1))\n  \
           case \"$protect\" in *\" $name \"*) echo \"kept $name (live)\"; continue ;; esac\n  \
           [ \"$n\" -le \"$keep\" ] && continue\n  \
           if [ \"$dry\" = 1 ]; then echo \"would remove $name\"\n  \
           elif rm -rf -- \"${{dir:?}}/$name\"; then echo \"removed $name\"\n  \
           else echo \"could not remove $name\" >&2; fi\n\
         done\n",
        dir = quote(&paths.releases),
        base = quote(&paths.base),
        st = quote(&paths.state),
        deployed = quote(deployed),
        dry = u8::from(dry_run),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A scratch tenant: releases landed oldest first, one second apart in mtime.
    fn scratch(releases: &[&str]) -> (tempfile::TempDir, PrunePaths) {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("opt/acme");
        let rel = base.join("releases");
        std::fs::create_dir_all(&rel).unwrap();
        for (i, r) in releases.iter().enumerate() {
            let d = rel.join(r);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("agent.py"), "x").unwrap();
            let when = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_700_000_000 + i as u64 * 60);
            std::fs::File::open(&d).unwrap().set_modified(when).unwrap();
        }
        let paths = PrunePaths {
            releases: rel.display().to_string(),
            base: base.display().to_string(),
            state: t.path().join("state.json").display().to_string(),
        };
        (t, paths)
    }

    fn run(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn left(paths: &PrunePaths) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&paths.releases)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_newest_n_are_kept_and_the_older_removed() {
        let (_t, p) = scratch(&["1.0.0", "2.0.0", "3.0.0", "4.0.0"]);
        let out = run(&prune(&p, 2, "4.0.0", false));
        assert_eq!(left(&p), ["3.0.0", "4.0.0"], "{out}");
        assert!(out.contains("removed 1.0.0") && out.contains("removed 2.0.0"));
    }

    #[test]
    fn live_releases_are_never_removed_and_count_toward_n() {
        let (t, p) = scratch(&["1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0"]);
        // blue points at 1.0.0 (an old live color); the state names 2.0.0 as previous.
        std::os::unix::fs::symlink(format!("{}/1.0.0", p.releases), format!("{}/blue", p.base))
            .unwrap();
        std::fs::write(
            &p.state,
            "{\n  \"tenant\": \"acme\",\n  \"active\": \"green\",\n  \"version\": \"5.0.0\",\n  \"previous\": \"blue\",\n  \"previous_version\": \"2.0.0\"\n}\n",
        )
        .unwrap();
        let out = run(&prune(&p, 2, "5.0.0", false));
        assert_eq!(left(&p), ["1.0.0", "2.0.0", "4.0.0", "5.0.0"], "{out}");
        assert!(out.contains("kept 1.0.0 (live)") && out.contains("removed 3.0.0"));
        drop(t);
    }

    #[test]
    fn a_dry_run_lists_what_would_go_and_removes_nothing() {
        let (_t, p) = scratch(&["1.0.0", "2.0.0", "3.0.0"]);
        let out = run(&prune(&p, 1, "3.0.0", true));
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("would remove"))
                .count(),
            2
        );
        assert_eq!(left(&p).len(), 3);
    }

    #[test]
    fn uploads_in_progress_links_and_odd_names_are_left_alone() {
        let (_t, p) = scratch(&["1.0.0", "2.0.0"]);
        let rel = Path::new(&p.releases);
        for odd in ["3.0.0.drover-tmp.77", "x y", "$(touch pwned)"] {
            std::fs::create_dir(rel.join(odd)).unwrap();
        }
        std::os::unix::fs::symlink("/", rel.join("root-link")).unwrap();
        let out = run(&prune(&p, 1, "2.0.0", false));
        assert_eq!(
            left(&p),
            [
                "$(touch pwned)",
                "2.0.0",
                "3.0.0.drover-tmp.77",
                "root-link",
                "x y"
            ],
            "{out}"
        );
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn a_tenant_without_releases_is_nothing_to_do() {
        let p = PrunePaths::of("acme");
        assert_eq!(p.base, "/opt/drover/acme");
        let missing = PrunePaths {
            releases: "/nonexistent/drover/releases".into(),
            ..p
        };
        assert_eq!(run(&prune(&missing, 1, "1.0.0", false)), "");
    }
}
