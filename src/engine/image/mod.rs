//! The control node's side of the `image` step, done once per run per image whatever
//! the number of hosts: find the image ID, save the archive (`via = "load"`), start the
//! run's registry and push the image (`via = "registry"`). Hosts ask; the first asker
//! does the work, the others wait for its answer (the same answer, errors included).
//!
//! Work on the control node (inspect, save, load, push) runs at most
//! [`LOCAL_WORK`] at a time: each is a Docker command that reads or writes hundreds of
//! MB. What a run made (saved archives, the registry's config) is in a scratch dir
//! removed when the run's [`Images`] goes; the registry's blobs stay in its cache dir.

mod keepers;
mod local;
mod registry;

pub use keepers::abort;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};

use crate::plan::steps::ImageSource;

/// Control-node commands (inspect, save, push) run at once.
pub const LOCAL_WORK: usize = 2;

/// The repository images get in the run's registry; the tag is `sha256-<ID>`, so the
/// registry holds each image once, by content.
const REPOSITORY: &str = "drover/images";

/// Why an image cannot be shipped (from the control node's side).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImageError {
    /// Neither docker nor podman is on `PATH`.
    #[error("failed to find a container engine on the control node (docker or podman)")]
    NoEngine,
    /// The local engine has no such image.
    #[error("failed to find image {reference} on the control node: {reason}")]
    NotFound {
        /// the reference asked for
        reference: String,
        /// what the engine said
        reason: String,
    },
    /// A docker-archive that cannot be read.
    #[error("failed to read image archive {}: {reason}", path.display())]
    Archive {
        /// the archive
        path: PathBuf,
        /// why
        reason: String,
    },
    /// A local command failed.
    #[error("failed to {what}: {reason}")]
    Local {
        /// what was being done
        what: String,
        /// its error output
        reason: String,
    },
    /// The run's registry did not start.
    #[error("failed to start the image registry on the control node: {reason}")]
    Registry {
        /// why
        reason: String,
    },
}

/// A once-per-run answer, shared by every host asking for it.
type Cell<T> = Arc<OnceCell<Result<T, ImageError>>>;

/// Held by the one target shipping an image to a host.
type Shipping = Arc<tokio::sync::Mutex<()>>;

/// The images of one run. Cheap to clone (all clones share the work); when the last
/// clone goes, the registry is stopped and the scratch dir removed.
#[derive(Debug, Clone, Default)]
pub struct Images {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ids: Mutex<HashMap<ImageSource, Cell<String>>>,
    archives: Mutex<HashMap<String, Cell<PathBuf>>>,
    pushed: Mutex<HashMap<String, Cell<String>>>,
    /// (host, image ID) → held while one target ships the image to that host
    shipping: Mutex<HashMap<(String, String), Shipping>>,
    registry: OnceCell<Result<registry::Registry, ImageError>>,
    scratch: OnceCell<Result<tempfile_dir::ScratchDir, ImageError>>,
    work: Semaphore,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            ids: Mutex::default(),
            archives: Mutex::default(),
            pushed: Mutex::default(),
            shipping: Mutex::default(),
            registry: OnceCell::new(),
            scratch: OnceCell::new(),
            work: Semaphore::new(LOCAL_WORK),
        }
    }
}

/// The cell for `key` in `map`, made on first ask.
fn cell<K: std::hash::Hash + Eq + Clone, T>(map: &Mutex<HashMap<K, Cell<T>>>, key: &K) -> Cell<T> {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(map.entry(key.clone()).or_default())
}

impl Images {
    /// Held while one target probes and ships image `id` to `host`: the host's other
    /// tenants wait, then find it there, so a host is sent an image once however many
    /// of its tenants deploy it at the same moment.
    pub async fn shipping(&self, host: &str, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .inner
                .shipping
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry((host.to_owned(), id.to_owned())).or_default())
        };
        lock.lock_owned().await
    }

    /// The image's ID (64 hex digits): from the local engine, or an archive's manifest.
    ///
    /// # Errors
    /// No engine, no such image, an unreadable archive.
    pub async fn id(&self, source: &ImageSource) -> Result<String, ImageError> {
        let cell = cell(&self.inner.ids, source);
        cell.get_or_init(|| async {
            let _slot = self.inner.work.acquire().await;
            match source {
                ImageSource::Local(reference) => local::image_id(local::engine()?, reference).await,
                ImageSource::Archive(path) => local::archive_id(path).await,
            }
        })
        .await
        .clone()
    }

    /// A docker-archive of image `id` to stream to hosts: the archive itself, or the
    /// local image saved once into the run's scratch dir.
    ///
    /// # Errors
    /// The save failed.
    pub async fn archive(&self, source: &ImageSource, id: &str) -> Result<PathBuf, ImageError> {
        if let ImageSource::Archive(path) = source {
            return Ok(path.clone());
        }
        let cell = cell(&self.inner.archives, &id.to_string());
        cell.get_or_init(|| async {
            let dest = self.scratch().await?.join(format!("{id}.tar"));
            let _slot = self.inner.work.acquire().await;
            local::save(local::engine()?, id, &dest).await?;
            Ok(dest)
        })
        .await
        .clone()
    }

    /// Image `id` in the run's registry (started on first use): its address and the
    /// reference to pull (`drover/images:sha256-<ID>`, without the address).
    ///
    /// # Errors
    /// The registry did not start, or the push failed.
    pub async fn pushed(
        &self,
        source: &ImageSource,
        id: &str,
    ) -> Result<(SocketAddr, String), ImageError> {
        let addr = self.registry().await?;
        let reference = format!("{REPOSITORY}:sha256-{id}");
        let cell = cell(&self.inner.pushed, &id.to_string());
        cell.get_or_init(|| async {
            let _slot = self.inner.work.acquire().await;
            let tool = local::engine()?;
            if let ImageSource::Archive(path) = source {
                local::load(tool, path, id).await?;
            }
            local::push(tool, id, &format!("{addr}/{reference}")).await?;
            Ok(reference.clone())
        })
        .await
        .clone()
        .map(|r| (addr, r))
    }

    /// The run's registry address, starting it on first use.
    async fn registry(&self) -> Result<SocketAddr, ImageError> {
        let started = self
            .inner
            .registry
            .get_or_init(|| async {
                let scratch = self.scratch().await?;
                registry::Registry::start(&registry::storage_dir(), &scratch).await
            })
            .await;
        match started {
            Ok(registry) => Ok(registry.addr),
            Err(e) => Err(e.clone()),
        }
    }

    /// The run's scratch dir, made on first use.
    async fn scratch(&self) -> Result<PathBuf, ImageError> {
        let made = self
            .inner
            .scratch
            .get_or_init(|| async { tempfile_dir::ScratchDir::new() })
            .await;
        match made {
            Ok(dir) => Ok(dir.path.clone()),
            Err(e) => Err(e.clone()),
        }
    }
}

mod tempfile_dir {
    //! The run's scratch dir: `$TMPDIR/drover-images-<pid>-<n>`, removed on drop.

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::ImageError;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub(super) struct ScratchDir {
        pub(super) path: PathBuf,
    }

    impl ScratchDir {
        pub(super) fn new() -> Result<Self, ImageError> {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("drover-images-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).map_err(|e| ImageError::Local {
                what: format!("create {}", path.display()),
                reason: e.to_string(),
            })?;
            super::keepers::made(&path);
            Ok(Self { path })
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
            super::keepers::removed(&self.path);
        }
    }
}
