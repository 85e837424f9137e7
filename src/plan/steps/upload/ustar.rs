//! The ustar stream an upload sends: deterministic, so the same tree gives the same
//! bytes; long names and sizes in pax records.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::MANIFEST;
use crate::plan::steps::UploadFile;

/// A ustar stream: every directory (0755), every file (0644/0755), the manifest, then
/// the end-of-archive blocks. Deterministic: mtime 0, uid/gid 0, sorted entries; names
/// that do not fit ustar's name/prefix fields get a pax `path` record.
pub(super) fn tar(files: &[UploadFile], manifest: &[u8]) -> Vec<u8> {
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut p = f.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent);
            p = parent;
        }
    }
    let mut sorted: Vec<&UploadFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    for d in dirs {
        entry(&mut out, &format!("{d}/"), b'5', 0o755, &[]);
    }
    entry(&mut out, MANIFEST, b'0', 0o644, manifest);
    for f in sorted {
        entry(
            &mut out,
            &f.path,
            b'0',
            if f.executable { 0o755 } else { 0o644 },
            &f.bytes,
        );
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub(super) const BLOCK: usize = 512;
/// Largest size an 11-digit octal field holds.
const MAX_OCTAL_SIZE: u64 = 0o777_7777_7777;

fn entry(out: &mut Vec<u8>, path: &str, kind: u8, mode: u32, data: &[u8]) {
    let size = data.len() as u64;
    let split = split_name(path.as_bytes());
    let mut pax = String::new();
    if split.is_none() {
        pax_record(&mut pax, "path", path);
    }
    if size > MAX_OCTAL_SIZE {
        pax_record(&mut pax, "size", &size.to_string());
    }
    if !pax.is_empty() {
        let h = header(b"", b"drover.pax", b'x', 0o644, pax.len() as u64);
        out.extend_from_slice(&h);
        push_data(out, pax.as_bytes());
    }
    let (prefix, name) = split.unwrap_or((b"", truncate(path.as_bytes(), 100)));
    out.extend_from_slice(&header(prefix, name, kind, mode, size.min(MAX_OCTAL_SIZE)));
    push_data(out, data);
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

fn push_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    out.resize(out.len() + pad, 0);
}

/// `name` alone when it fits 100 bytes, else a `prefix/name` split at a `/`.
fn split_name(p: &[u8]) -> Option<(&[u8], &[u8])> {
    if p.len() <= 100 {
        return Some((b"", p));
    }
    // The prefix holds at most 155 bytes, the name at most 100 and not empty.
    (0..p.len())
        .filter(|&i| p[i] == b'/' && i <= 155 && p.len() - i - 1 <= 100 && i + 1 < p.len())
        .map(|i| (&p[..i], &p[i + 1..]))
        .next()
}

/// `"LEN key=value\n"` where LEN counts the whole record, itself included.
fn pax_record(out: &mut String, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let _ = writeln!(out, "{len} {key}={value}");
}

fn header(prefix: &[u8], name: &[u8], kind: u8, mode: u32, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[148..156].fill(b' ');
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Zero-padded octal digits filling the field but its last byte, then NUL.
fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    field[..w].copy_from_slice(&s.as_bytes()[s.len() - w..]);
    field[w] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [0, 1, 85, 86, 87, 990, 995, 1000] {
            let mut s = String::new();
            pax_record(&mut s, "path", &"p".repeat(n));
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), s.len(), "{n}");
        }
    }
}
