//! known_hosts files, parsed once per run and indexed, with OpenSSH's semantics:
//! plain and `[host]:port` names, comma lists, `*`/`?` wildcards, `!` negation, hashed
//! `|1|salt|hmac` names, `@revoked` markers. Accepted new keys are appended by one writer.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};

/// What to do with a key that no known_hosts file lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (the default, like `StrictHostKeyChecking yes`).
    Strict,
    /// Record unknown keys and go on; changed keys are still refused.
    AcceptNew,
}

/// How a host's offered key compares with what the files record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recorded key matches.
    Known,
    /// Nothing is recorded for this host.
    Unknown,
    /// Keys are recorded for this host but none matches: refuse.
    Changed {
        /// file with the first recorded key
        file: PathBuf,
        /// its 1-based line
        line: usize,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// file with the marker
        file: PathBuf,
    },
}

#[derive(Debug)]
enum Pattern {
    Plain { text: String, negated: bool },
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug)]
struct Entry {
    patterns: Vec<Pattern>,
    marker: Marker,
    key: PublicKey,
    file: usize,
    line: usize,
}

impl Entry {
    /// OpenSSH: an entry applies when some pattern matches and no negated one does.
    fn matches(&self, name: &str) -> bool {
        let mut hit = false;
        for pattern in &self.patterns {
            match pattern {
                Pattern::Plain { text, negated } => {
                    if wildcard_match(text, name) {
                        if *negated {
                            return false;
                        }
                        hit = true;
                    }
                }
                Pattern::Hashed { salt, hash } => {
                    if hashed_name_matches(salt, hash, name) {
                        hit = true;
                    }
                }
            }
        }
        hit
    }
}

/// All known_hosts entries of a run.
#[derive(Debug)]
pub struct KnownHosts {
    files: Vec<PathBuf>,
    entries: RwLock<Vec<Entry>>,
    /// exact plain name → entries; everything else (wildcards, hashes) is scanned
    by_name: RwLock<HashMap<String, Vec<usize>>>,
    scanned: Vec<usize>,
    learn_to: PathBuf,
    writer: Mutex<()>,
}

/// The name a host is recorded under: `address`, or `[address]:port` off port 22.
#[must_use]
pub fn lookup_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

impl KnownHosts {
    /// Reads the given files (missing ones count as empty). New keys are recorded in
    /// the first file.
    ///
    /// # Errors
    /// An I/O error other than "not found".
    pub fn load(files: &[PathBuf]) -> std::io::Result<Self> {
        let mut entries = Vec::new();
        for (index, path) in files.iter().enumerate() {
            match std::fs::read_to_string(path) {
                Ok(text) => parse_into(&text, index, &mut entries),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut scanned = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let exact = entry.patterns.iter().all(|p| {
                matches!(p, Pattern::Plain { text, negated: false } if !text.contains(['*', '?']))
            });
            if exact {
                for p in &entry.patterns {
                    if let Pattern::Plain { text, .. } = p {
                        by_name.entry(text.clone()).or_default().push(i);
                    }
                }
            } else {
                scanned.push(i);
            }
        }
        Ok(Self {
            learn_to: files.first().cloned().unwrap_or_default(),
            files: files.to_vec(),
            entries: RwLock::new(entries),
            by_name: RwLock::new(by_name),
            scanned,
            writer: Mutex::new(()),
        })
    }

    /// The files consulted, in order.
    #[must_use]
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn matching<R>(&self, name: &str, mut each: impl FnMut(&Entry) -> Option<R>) -> Option<R> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_name = self
            .by_name
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let exact = by_name.get(name).into_iter().flatten();
        for &i in exact.chain(self.scanned.iter()) {
            let entry = &entries[i];
            if entry.matches(name)
                && let Some(r) = each(entry)
            {
                return Some(r);
            }
        }
        None
    }

    /// Key algorithms recorded for a host, so the client can ask the server for a key
    /// it can verify (as OpenSSH orders `HostKeyAlgorithms`).
    #[must_use]
    pub fn known_algorithms(&self, address: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(address, port);
        let mut found = Vec::new();
        self.matching(&name, |e| {
            if e.marker == Marker::None && !found.contains(&e.key.algorithm()) {
                found.push(e.key.algorithm());
            }
            None::<()>
        });
        found
    }

    /// Compares an offered key with the records.
    #[must_use]
    pub fn verify(&self, address: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = lookup_name(address, port);
        let files = &self.files;
        if let Some(file) = self.matching(&name, |e| {
            (e.marker == Marker::Revoked && e.key.key_data() == key.key_data())
                .then(|| files.get(e.file).cloned().unwrap_or_default())
        }) {
            return Verdict::Revoked { file };
        }
        let mut first_other = None;
        let known = self.matching(&name, |e| {
            if e.marker != Marker::None {
                return None;
            }
            if e.key.key_data() == key.key_data() {
                return Some(());
            }
            first_other.get_or_insert((e.file, e.line));
            None
        });
        match (known, first_other) {
            (Some(()), _) => Verdict::Known,
            (None, Some((file, line))) => Verdict::Changed {
                file: files.get(file).cloned().unwrap_or_default(),
                line,
            },
            (None, None) => Verdict::Unknown,
        }
    }

    /// Records a newly accepted key: appended to the first file and remembered for the
    /// rest of the run. One writer at a time, so parallel accepts do not interleave.
    ///
    /// # Errors
    /// The I/O error of writing the file.
    pub fn learn(&self, address: &str, port: u16, key: &PublicKey) -> std::io::Result<PathBuf> {
        let name = lookup_name(address, port);
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.verify(address, port, key) == Verdict::Known {
            return Ok(self.learn_to.clone());
        }
        let line = format!(
            "{name} {}\n",
            key.to_openssh()
                .map_err(|e| std::io::Error::other(e.to_string()))?
        );
        if let Some(dir) = self.learn_to.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.learn_to)?;
        file.write_all(line.as_bytes())?;
        file.flush()?;
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.push(Entry {
            patterns: vec![Pattern::Plain {
                text: name.clone(),
                negated: false,
            }],
            marker: Marker::None,
            key: key.clone(),
            file: 0,
            line: 0,
        });
        let index = entries.len() - 1;
        drop(entries);
        self.by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name)
            .or_default()
            .push(index);
        Ok(self.learn_to.clone())
    }

    /// The file new keys are written to.
    #[must_use]
    pub fn learn_file(&self) -> &Path {
        &self.learn_to
    }
}

fn parse_into(text: &str, file: usize, entries: &mut Vec<Entry>) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next().unwrap_or_default();
        }
        let (Some(_algorithm), Some(base64)) = (fields.next(), fields.next()) else {
            continue;
        };
        // Lines we cannot read are skipped, as OpenSSH does.
        let Ok(key) = russh::keys::parse_public_key_base64(base64) else {
            continue;
        };
        let patterns = first
            .split(',')
            .filter_map(parse_pattern)
            .collect::<Vec<_>>();
        if patterns.is_empty() {
            continue;
        }
        entries.push(Entry {
            patterns,
            marker,
            key,
            file,
            line: n + 1,
        });
    }
}

fn parse_pattern(text: &str) -> Option<Pattern> {
    if let Some(rest) = text.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        return Some(Pattern::Hashed {
            salt: BASE64.decode(salt.as_bytes()).ok()?,
            hash: BASE64.decode(hash.as_bytes()).ok()?,
        });
    }
    let (text, negated) = match text.strip_prefix('!') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    (!text.is_empty()).then(|| Pattern::Plain {
        text: text.to_string(),
        negated,
    })
}

fn hashed_name_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}

/// OpenSSH pattern matching: `*` any run, `?` one character; case-insensitive.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The SHA256 fingerprint OpenSSH shows (`SHA256:...`).
#[must_use]
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn known(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        let kh = KnownHosts::load(&[path]).unwrap();
        (dir, kh)
    }

    #[test]
    fn plain_and_bracketed_port_entries_match_exactly() {
        let (_d, kh) = known(&format!(
            "10.0.0.1 ssh-ed25519 {ED1}\n[10.0.0.2]:2222 ssh-ed25519 {ED1}\n"
        ));
        assert_eq!(kh.verify("10.0.0.1", 22, &key(ED1)), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.2", 2222, &key(ED1)), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.2", 22, &key(ED1)), Verdict::Unknown);
        assert_eq!(kh.verify("10.0.0.3", 22, &key(ED1)), Verdict::Unknown);
    }

    #[test]
    fn a_different_key_for_a_known_host_is_a_change_with_its_line() {
        let (_d, kh) = known(&format!("# c\n10.0.0.1 ssh-ed25519 {ED1}\n"));
        match kh.verify("10.0.0.1", 22, &key(ED2)) {
            Verdict::Changed { line, .. } => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hashed_names_match_like_openssh() {
        // generated with: ssh-keygen -H on "10.0.0.9"
        let salt = [7u8; 20];
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[10.0.0.9]:2200");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} ssh-ed25519 {ED1}\n",
            BASE64.encode(&salt),
            BASE64.encode(&hash)
        );
        let (_d, kh) = known(&line);
        assert_eq!(kh.verify("10.0.0.9", 2200, &key(ED1)), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.9", 22, &key(ED1)), Verdict::Unknown);
    }

    #[test]
    fn wildcards_negation_and_revocation_are_honoured() {
        let (_d, kh) = known(&format!(
            "10.1.*,!10.1.0.5 ssh-ed25519 {ED1}\n@revoked * ssh-ed25519 {ED2}\n"
        ));
        assert_eq!(kh.verify("10.1.0.4", 22, &key(ED1)), Verdict::Known);
        assert_eq!(kh.verify("10.1.0.5", 22, &key(ED1)), Verdict::Unknown);
        assert!(matches!(
            kh.verify("10.1.0.4", 22, &key(ED2)),
            Verdict::Revoked { .. }
        ));
    }

    #[test]
    fn learning_records_a_key_once_and_it_is_known_afterwards() {
        let (dir, kh) = known("");
        kh.learn("10.0.0.1", 2222, &key(ED1)).unwrap();
        kh.learn("10.0.0.1", 2222, &key(ED1)).unwrap();
        assert_eq!(kh.verify("10.0.0.1", 2222, &key(ED1)), Verdict::Known);
        let text = std::fs::read_to_string(dir.path().join("known_hosts")).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("[10.0.0.1]:2222 ssh-ed25519 "));
        let again = KnownHosts::load(&[dir.path().join("known_hosts")]).unwrap();
        assert_eq!(again.verify("10.0.0.1", 2222, &key(ED1)), Verdict::Known);
    }

    #[test]
    fn wildcard_matching_follows_openssh_rules() {
        assert!(wildcard_match("*.example.com", "a.example.com"));
        assert!(wildcard_match("10.0.0.?", "10.0.0.7"));
        assert!(!wildcard_match("10.0.0.?", "10.0.0.17"));
        assert!(wildcard_match("*", "x"));
        assert!(!wildcard_match("a*b", "ac"));
    }
}
