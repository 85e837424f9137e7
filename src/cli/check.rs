//! `drover check`: validate the inventory without connecting anywhere.

use clap::{Args, ValueEnum};

use super::Context;
use crate::config::Inventory;
use crate::error::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct Opts {
    /// Output format: annotated text, or a JSON array of
    /// {file, line, column, end_line, end_column, code, message, help}.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub(crate) fn run(cx: &Context, opts: &Opts) -> ExitCode {
    if cx.inventory_paths.is_empty() {
        eprintln!("error: no inventory: pass -i FILE or create inventory/*.toml");
        return ExitCode::BadInput;
    }
    match (Inventory::load(&cx.inventory_paths), opts.format) {
        (Ok(inv), Format::Text) => {
            if !cx.quiet {
                println!(
                    "ok: {} host{}, {} tenant{}, {} group{} in {} file{}",
                    inv.hosts.len(),
                    plural(inv.hosts.len()),
                    inv.tenants.len(),
                    plural(inv.tenants.len()),
                    inv.groups().len(),
                    plural(inv.groups().len()),
                    cx.inventory_paths.len(),
                    plural(cx.inventory_paths.len()),
                );
            }
            ExitCode::Ok
        }
        (Ok(_), Format::Json) => {
            println!("[]");
            ExitCode::Ok
        }
        (Err(diagnostics), Format::Text) => {
            cx.print_diagnostics(&diagnostics);
            ExitCode::BadInput
        }
        (Err(diagnostics), Format::Json) => {
            let list: Vec<_> = diagnostics.0.iter().map(crate::config::Diagnostic::to_json).collect();
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            ExitCode::BadInput
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
