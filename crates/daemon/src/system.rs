//! `/version`, `/info`, `/system/df`, `/auth`.

use api_server::{ApiError, ContainerBackend, ImageBackend, SystemBackend};
use api_types::models::generated::{AuthConfig, AuthResponse};
use api_types::models::{
    DiskUsage, SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};
use api_types::query::{ContainerListQuery, ImageListQuery};
use image::registry::{
    login_registry, Credentials, RegistryClient, RegistryError, RegistryOptions,
};

use crate::Daemon;

/// berthd's version, as `docker version` shows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A login's failure with the status dockerd gives it: the registry's refusal is a 401 (the
/// docker CLI prints the text either way), a malformed address a 400, an unreachable registry
/// a 500.
fn login_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::LoginRefused { .. } => ApiError::Unauthorized(e.to_string()),
        RegistryError::LoginFailed { status: 401, .. } => ApiError::Unauthorized(e.to_string()),
        RegistryError::BadServerAddress { .. } | RegistryError::BadCredentials { .. } => {
            ApiError::InvalidParameter(e.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// The machine's memory in bytes (`MemTotal`), 0 if /proc/meminfo cannot be read.
pub(crate) fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl SystemBackend for Daemon {
    async fn info(&self) -> Result<SystemInfo, ApiError> {
        let (total, running) = self
            .inner
            .containers
            .lock()
            .map(|r| r.counts())
            .unwrap_or((0, 0));
        let images = self.inner.images.read().await.list().len();
        let name = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(SystemInfo {
            id: Some(format!("berth-{}", self.inner.config.data_root.display())),
            name: Some(name),
            containers: Some(total as i64),
            containers_running: Some(running as i64),
            containers_paused: Some(0),
            containers_stopped: Some((total - running) as i64),
            images: Some(images as i64),
            driver: Some("overlay2".into()),
            docker_root_dir: Some(self.inner.config.data_root.display().to_string()),
            server_version: Some(VERSION.into()),
            operating_system: Some("berth".into()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            kernel_version: Some(kernel()),
            ncpu: std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as i64),
            mem_total: Some(mem_total()),
            logging_driver: Some("json-file".into()),
            cgroup_driver: None,
            default_runtime: Some(self.inner.config.default_runtime.clone()),
            ..Default::default()
        })
    }

    async fn version(&self) -> Result<SystemVersion, ApiError> {
        Ok(SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "Berth Engine".into(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".into(),
                version: VERSION.into(),
                details: None,
            }]),
            version: Some(VERSION.into()),
            git_commit: Some("berth".into()),
            go_version: Some(String::new()),
            os: Some("linux".into()),
            arch: Some(arch().into()),
            kernel_version: Some(kernel()),
            build_time: Some(String::new()),
            ..Default::default()
        })
    }

    /// Sizes come from what the image store recorded when it unpacked each
    /// layer and from the containers' own records, not from a walk of the
    /// data root.
    async fn disk_usage(&self) -> Result<DiskUsage, ApiError> {
        let mut images = self
            .image_list(ImageListQuery {
                all: true,
                shared_size: true,
                ..Default::default()
            })
            .await?;
        let containers = self
            .list(ContainerListQuery {
                all: true,
                size: true,
                ..Default::default()
            })
            .await?;
        // df always reports the shared part (the list answers -1, "not
        // computed", unless asked); the CLI's reclaimable sums depend on it.
        for i in &mut images {
            i.shared_size = i.shared_size.max(0);
        }
        // Each image's unique part plus, once, the layers it shares.
        let unique: i64 = images.iter().map(|i| i.size - i.shared_size.max(0)).sum();
        let shared = images
            .iter()
            .map(|i| i.shared_size.max(0))
            .max()
            .unwrap_or(0);
        Ok(DiskUsage {
            layers_size: unique + shared,
            images,
            containers,
            volumes: {
                let inner = self.inner.clone();
                crate::blocking(move || inner.volumes.disk_usage()).await?
            },
            build_cache: Vec::new(),
        })
    }

    /// The credentials go to the registry and nowhere else: berthd keeps no login state (the
    /// client sends them again with each pull or push). The registry is reached as pull and
    /// push reach it (`--insecure-registry`, loopback always insecure), and never through
    /// berthd's own docker config.
    async fn auth(&self, config: AuthConfig) -> Result<AuthResponse, ApiError> {
        let address = config.serveraddress.unwrap_or_default();
        let registry = login_registry(&address).map_err(login_error)?;
        let credentials = Credentials::new(
            config.username.unwrap_or_default(),
            config.password.unwrap_or_default(),
        );
        let client = RegistryClient::new(RegistryOptions {
            insecure_registries: self.inner.config.insecure_registries.clone(),
            credentials: None,
            docker_config: None,
            ..RegistryOptions::default()
        });
        client
            .check_login(&registry, &credentials)
            .await
            .map_err(login_error)?;
        tracing::info!(%registry, user = %credentials.username, "login accepted by the registry");
        Ok(AuthResponse {
            status: "Login Succeeded".to_string(),
            identity_token: Some(String::new()),
        })
    }
}
