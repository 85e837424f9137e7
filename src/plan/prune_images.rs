//! Image pruning (`keep_images = N`): after a successful switch or deploy, the images
//! of the playbook's repository in the host's podman store beyond the newest N are
//! removed.
//!
//! "Newest" is podman's creation time of the image. Never removed, whatever N: an
//! image any drover unit on the host names (the `image` in the first line of every
//! `/etc/systemd/system/drover-*.service`: both colors of every tenant, so a rollback
//! always finds its image), the image of any container that exists, and the release
//! just deployed. Protected images count toward N. The host's store is shared by its
//! tenants, so the protection is host-wide.
//!
//! The script prints one line per image it looked at: `kept REF (live)`,
//! `removed REF`, or in dry-run `would remove REF`; nothing when podman is absent.

use crate::shell::quote;

/// The pruning script for `repository` (e.g. `localhost/drover-agent`): keeps the
/// newest `keep` images plus the protected ones; removes the rest by name (lists
/// them, in dry-run).
#[must_use]
pub fn prune_images(repository: &str, keep: u32, deployed_tag: &str, dry_run: bool) -> String {
    format!(
        "set -u; set -f\n\
         repo={repo}; keep={keep}; dry={dry}; deployed={deployed}\n\
         command -v podman >/dev/null 2>&1 || exit 0\n\
         id_of() {{ podman image inspect --format '{{{{.Id}}}}' \"$1\" 2>/dev/null | sed 's/^sha256://' | head -n 1; }}\n\
         protect=\" $(id_of \"$deployed\") \"\n\
         set +f\n\
         for u in /etc/systemd/system/drover-*.service; do\n  \
           [ -f \"$u\" ] || continue\n  \
           r=$(sed -n '1s/^# Managed by drover: .*, image \\(.*\\)\\.$/\\1/p' \"$u\")\n  \
           [ -n \"$r\" ] && protect=\"$protect$(id_of \"$r\") \"\n\
         done\n\
         set -f\n\
         for i in $(podman ps -a --no-trunc --format '{{{{.ImageID}}}}' 2>/dev/null); do protect=\"$protect${{i#sha256:}} \"; done\n\
         n=0\n\
         podman images --no-trunc --sort created --format '{{{{.ID}}}} {{{{.Repository}}}}:{{{{.Tag}}}}' 2>/dev/null | while read -r id name; do\n  \
           case \"$name\" in \"$repo\":*) ;; *) continue ;; esac\n  \
           id=${{id#sha256:}}\n  \
           n=$((n + 1))\n  \
           case \"$protect\" in *\" $id \"*) echo \"kept $name (live)\"; continue ;; esac\n  \
           [ \"$n\" -le \"$keep\" ] && continue\n  \
           if [ \"$dry\" = 1 ]; then echo \"would remove $name\"\n  \
           elif podman rmi -- \"$name\" >/dev/null 2>&1; then echo \"removed $name\"\n  \
           else echo \"could not remove $name\" >&2; fi\n\
         done\n",
        repo = quote(repository),
        deployed = quote(&format!("{repository}:{deployed_tag}")),
        dry = u8::from(dry_run),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// Runs the script with a stub `podman`: `images` lists `store` (newest first,
    /// `ID NAME` lines), `ps` lists `running` image IDs, `image inspect` maps a name
    /// to its ID, `rmi` logs to `dir/rmi`.
    fn run(store: &[(&str, &str)], running: &[&str], keep: u32, dry: bool) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let images: String = store
            .iter()
            .map(|(id, n)| format!("sha256:{id} {n}\n"))
            .collect();
        let inspect: String = store
            .iter()
            .map(|(id, n)| format!("  {n}) echo {id} ;;\n"))
            .collect();
        let stub = format!(
            "#!/bin/sh\ncase \"$1\" in\n\
             images) printf '%s' '{images}' ;;\n\
             ps) printf '%s\\n' {running} ;;\n\
             image) eval \"last=\\${{$#}}\"; case \"$last\" in\n{inspect}  *) exit 125 ;; esac ;;\n\
             rmi) echo \"$3\" >> '{d}/rmi' ;;\n\
             esac\n",
            running = running.join(" "),
        );
        let p = dir.path().join("podman");
        std::fs::write(&p, stub).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(prune_images("localhost/drover-agent", keep, "3.0.0", dry))
            .env("PATH", format!("{d}:/usr/bin:/bin"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let rmi = std::fs::read_to_string(dir.path().join("rmi")).unwrap_or_default();
        (String::from_utf8(out.stdout).unwrap(), rmi)
    }

    const STORE: &[(&str, &str)] = &[
        ("e4", "localhost/drover-agent:4.0.0"),
        ("c3", "localhost/drover-agent:3.0.0"),
        ("b2", "localhost/drover-agent:2.0.0"),
        ("ff", "localhost/other:1"),
        ("a1", "localhost/drover-agent:1.0.0"),
    ];

    #[test]
    fn images_beyond_the_newest_n_go_but_a_running_one_and_the_deployed_one_stay() {
        let (out, rmi) = run(STORE, &["a1"], 1, false);
        assert_eq!(rmi, "localhost/drover-agent:2.0.0\n", "{out}");
        assert!(
            out.contains("kept localhost/drover-agent:3.0.0 (live)"),
            "{out}"
        );
        assert!(
            out.contains("kept localhost/drover-agent:1.0.0 (live)"),
            "{out}"
        );
        assert!(
            !out.contains("other"),
            "another repository is never touched: {out}"
        );
    }

    #[test]
    fn a_dry_run_lists_what_it_would_remove_and_removes_nothing() {
        let (out, rmi) = run(STORE, &[], 2, true);
        assert_eq!(rmi, "");
        assert!(
            out.contains("would remove localhost/drover-agent:2.0.0"),
            "{out}"
        );
        assert!(
            out.contains("would remove localhost/drover-agent:1.0.0"),
            "{out}"
        );
        assert!(
            !out.contains("would remove localhost/drover-agent:4.0.0"),
            "{out}"
        );
    }
}
