//! Authentication: key files (loaded and decrypted once per run), then ssh-agent.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::{Handle, Handler};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio::sync::OnceCell;

use super::endpoint::Endpoint;
use super::error::TransportError;

/// Environment variable that may hold the passphrase of encrypted keys (CI, scripts);
/// on a terminal drover asks instead. It is never printed.
pub const PASSPHRASE_ENV: &str = "DROVER_KEY_PASSPHRASE";

type Loaded = Result<Arc<PrivateKey>, String>;

/// Private keys of a run, each read (and decrypted) once however many hosts use it.
#[derive(Debug)]
pub struct KeyStore {
    cells: Mutex<HashMap<PathBuf, Arc<OnceCell<Loaded>>>>,
    /// One passphrase prompt on the terminal at a time.
    prompt: tokio::sync::Mutex<()>,
    interactive: bool,
}

impl Default for KeyStore {
    fn default() -> Self {
        Self::new(std::io::stdin().is_terminal() && std::io::stderr().is_terminal())
    }
}

impl KeyStore {
    /// A store; `interactive` allows passphrase prompts on the terminal.
    #[must_use]
    pub fn new(interactive: bool) -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
            prompt: tokio::sync::Mutex::new(()),
            interactive,
        }
    }

    /// The key at `path`, loading it on first use.
    ///
    /// # Errors
    /// Why the key cannot be used (missing, unreadable, wrong passphrase).
    pub async fn load(&self, path: &Path) -> Loaded {
        let cell = {
            let mut cells = self
                .cells
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(cells.entry(path.to_path_buf()).or_default())
        };
        cell.get_or_init(|| self.read(path.to_path_buf()))
            .await
            .clone()
    }

    async fn read(&self, path: PathBuf) -> Loaded {
        let plain = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || russh::keys::load_secret_key(&path, None))
                .await
                .map_err(|e| e.to_string())?
        };
        match plain {
            Ok(key) => Ok(Arc::new(key)),
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let passphrase = match std::env::var(PASSPHRASE_ENV) {
                    Ok(p) => p,
                    Err(_) if self.interactive => {
                        let _one_at_a_time = self.prompt.lock().await;
                        let prompt = format!("passphrase for {}: ", path.display());
                        tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| format!("cannot read the passphrase: {e}"))?
                    }
                    Err(_) => {
                        return Err(format!(
                            "the key is encrypted and there is no terminal to ask for its passphrase \
                             (load it into ssh-agent, or set {PASSPHRASE_ENV})"
                        ));
                    }
                };
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    russh::keys::load_secret_key(&path, Some(&passphrase))
                })
                .await
                .map_err(|e| e.to_string())?
                .map(Arc::new)
                .map_err(|e| format!("cannot decrypt it: {e}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Offers the endpoint's key files, then the agent's keys, until one is accepted.
pub(crate) async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    endpoint: &Endpoint,
    keys: &KeyStore,
) -> Result<(), TransportError> {
    let mut tried = Vec::new();
    for path in &endpoint.identities {
        let key = match keys.load(path).await {
            Ok(key) => key,
            Err(reason) => {
                tried.push(format!("key {} (unusable: {reason})", path.display()));
                continue;
            }
        };
        let hash = if key.algorithm().is_rsa() {
            // May wait up to 1 s for the server's EXT_INFO, so only for RSA keys.
            handle.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let result = handle
            .authenticate_publickey(&endpoint.user, PrivateKeyWithHashAlg::new(key, hash))
            .await?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!("key {}", path.display()));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && agent_auth(handle, endpoint, &mut tried).await?
    {
        return Ok(());
    }
    Err(TransportError::AuthFailed {
        user: endpoint.user.clone(),
        tried,
    })
}

async fn agent_auth<H: Handler>(
    handle: &mut Handle<H>,
    endpoint: &Endpoint,
    tried: &mut Vec<String>,
) -> Result<bool, TransportError> {
    let mut agent = match russh::keys::agent::client::AgentClient::connect_env().await {
        Ok(agent) => agent,
        Err(e) => {
            tried.push(format!("ssh-agent (unreachable: {e})"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            tried.push(format!("ssh-agent (cannot list keys: {e})"));
            return Ok(false);
        }
    };
    for identity in identities {
        let key = identity.public_key().into_owned();
        let hash = if key.algorithm().is_rsa() {
            handle.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let label = format!("agent key {}", super::known_hosts::fingerprint(&key));
        match handle
            .authenticate_publickey_with(&endpoint.user, key, hash, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => tried.push(label),
            Err(e) => tried.push(format!("{label} (agent refused to sign: {e})")),
        }
    }
    Ok(false)
}
