//! `drover manpages DIR`: one man page per command (drover.1, drover-deploy.1, …),
//! generated from the clap definition so the manuals say exactly what `--help` says.

use std::path::{Path, PathBuf};

use clap::Args;

use super::error::CliError;
use crate::error::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct Opts {
    /// Directory to write the pages into, e.g. /usr/local/share/man/man1 (created when
    /// missing; existing pages of the same name are replaced).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// One man page: its file name (`drover-deploy.1`) and its roff source.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) file_name: String,
    pub(crate) roff: Vec<u8>,
}

/// The pages of `cmd` and of every visible subcommand below it, the top command's first.
pub(crate) fn pages(cmd: clap::Command) -> Vec<Page> {
    // No page for clap's built-in `help` subcommand: `drover help X` is `drover X --help`.
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building gives subcommands their display names (`drover-deploy`), hence the file names.
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &mut out);
    out
}

fn collect(cmd: &clap::Command, out: &mut Vec<Page>) {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)
        .expect("rendering into a Vec<u8> cannot fail");
    out.push(Page {
        file_name: man.get_filename(),
        roff,
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out);
    }
}

/// Writes every page into `dir`; returns the paths written.
fn write_pages(dir: &Path, pages: &[Page]) -> Result<Vec<PathBuf>, CliError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    pages
        .iter()
        .map(|page| {
            let path = dir.join(&page.file_name);
            std::fs::write(&path, &page.roff).map_err(failed(&path))?;
            Ok(path)
        })
        .collect()
}

/// Runs `drover manpages`: writes the pages and names each file on stdout.
pub(crate) fn run(opts: &Opts, cmd: clap::Command) -> Result<ExitCode, CliError> {
    for path in write_pages(&opts.dir, &pages(cmd))? {
        println!("{}", path.display());
    }
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;
    use std::process::{Command, Stdio};

    fn page<'a>(pages: &'a [Page], name: &str) -> &'a str {
        let page = pages
            .iter()
            .find(|p| p.file_name == name)
            .unwrap_or_else(|| panic!("no page {name}"));
        std::str::from_utf8(&page.roff).expect("roff is UTF-8")
    }

    /// Renders roff as `man` does (preconv for the UTF-8 in help texts, then the man
    /// macros) into plain text; `None` without groff. Warnings (`-ww`) must not appear.
    fn render(roff: &[u8]) -> Option<String> {
        use std::io::Write as _;
        let mut child = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take().unwrap().write_all(roff).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "groff: {stderr}");
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn every_subcommand_gets_a_page_named_after_it() {
        let cli = Cli::command();
        let mut expected: Vec<String> = cli
            .get_subcommands()
            .map(|s| format!("drover-{}.1", s.get_name()))
            .collect();
        expected.push("drover.1".to_owned());
        expected.sort();
        let pages = pages(Cli::command());
        let mut got: Vec<String> = pages.iter().map(|p| p.file_name.clone()).collect();
        assert_eq!(got[0], "drover.1", "the top page comes first");
        got.sort();
        assert_eq!(got, expected);
        assert!(expected.len() > 10, "{expected:?}");
    }

    #[test]
    fn each_page_has_the_sections_of_a_manual_and_its_commands_options() {
        let pages = pages(Cli::command());
        for sub in Cli::command().get_subcommands() {
            let name = format!("drover-{}", sub.get_name());
            let text = page(&pages, &format!("{name}.1"));
            assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{name}: {text}");
            assert!(text.contains(&format!(".TH {name} 1")), "{name}: {text}");
            for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
                assert!(text.contains(section), "{name} lacks {section}");
            }
            let about = sub
                .get_about()
                .expect("every command has an about")
                .to_string();
            let first_words: String = about
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .replace('-', "\\-"); // roff's minus sign
            assert!(text.contains(&first_words), "{name}: no {first_words:?}");
        }
        let top = page(&pages, "drover.1");
        assert!(
            top.contains(".SH SUBCOMMANDS") && top.contains("drover\\-deploy(1)"),
            "{top}"
        );
    }

    #[test]
    fn the_pages_render_with_groff_without_warnings() {
        let pages = pages(Cli::command());
        let Some(text) = render(&pages[0].roff) else {
            // CI installs groff (scripts/test); elsewhere the structure test above stands.
            assert!(
                std::env::var_os("CI").is_none(),
                "groff not found: run scripts/test"
            );
            println!("skipping: groff not found (apt-get install groff-base)");
            return;
        };
        assert!(
            text.starts_with("drover(1)") && text.contains("SUBCOMMANDS"),
            "{text}"
        );
        assert!(text.contains("drover-deploy(1)"), "{text}");
        for p in &pages[1..] {
            let text = render(&p.roff).expect("groff ran for the first page");
            let title = p.file_name.replace(".1", "(1)");
            for part in [title.as_str(), "NAME", "SYNOPSIS", "OPTIONS", "--inventory"] {
                assert!(text.contains(part), "{}: no {part}\n{text}", p.file_name);
            }
        }
        let deploy = render(page(&pages, "drover-deploy.1").as_bytes()).unwrap();
        assert!(
            deploy.contains("tenant × host"),
            "preconv keeps UTF-8: {deploy}"
        );
    }

    #[test]
    fn manpages_writes_every_page_into_a_new_directory_and_fails_cleanly_on_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("man").join("man1");
        let opts = Opts { dir: dir.clone() };
        assert_eq!(run(&opts, Cli::command()).unwrap(), ExitCode::Ok);
        let written = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(written, pages(Cli::command()).len());
        assert!(dir.join("drover-deploy.1").is_file());

        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let opts = Opts { dir: file };
        let err = run(&opts, Cli::command()).unwrap_err();
        assert!(matches!(err, CliError::Write { .. }), "{err:?}");
        assert_eq!(err.exit_code(), ExitCode::BadInput);
        assert!(err.to_string().starts_with("cannot write "), "{err}");
    }
}
