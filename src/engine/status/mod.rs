//! Fleet status, logs and diagnosis on the host side: the one shell script per host
//! that gathers everything `drover status` shows, its line-based output parsed back,
//! thresholds turned into problems, and the fan-out over hosts (bounded like
//! `drover run`). Also the scripts of `drover logs` and `drover diagnose`.
//!
//! The status script's line format is described in `script.rs`, beside its parser;
//! the script itself is in `collect.rs`.

mod collect;
mod colors;
mod diagnose;
mod evaluate;
mod fan_out;
#[cfg(test)]
mod fixtures;
mod locks;
mod logs;
mod report;
mod script;
mod verdict;

pub use collect::status_script;
pub use diagnose::{
    DiagnoseOptions, HostDiagnosis, diagnose, diagnose_script, is_safe_file_name, split_sections,
};
pub use evaluate::{evaluate_host, evaluate_target, failed_host, unknown_target};
pub use fan_out::{HostRun, StatusOptions, judge_status_run, run_on_host, status};
pub use locks::judge_lock_holders;
pub use logs::{LogLine, LogOptions, logs_command, logs_script, parse_log_line};
pub use report::{
    ColorReport, DISK_USED_THRESHOLD, Deploy, Disk, FleetStatus, Health, HostReport, HostState,
    Load, Lock, MEMORY_AVAILABLE_THRESHOLD, Memory, Problem, ProblemKind, SCHEMA_VERSION,
    STALE_LOCK, Summary, TargetReport, TargetState, human_bytes, human_duration, rfc3339,
};
pub use script::{HostQuery, RawHost, RawTenant, TenantQuery, parse_audit, parse_status};
pub use verdict::{DISK_FULL, DISK_FULL_WHEN_DOWN, Verdict, VerdictKind, verdict};
