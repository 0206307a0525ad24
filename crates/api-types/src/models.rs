//! The Engine API's request and response bodies, generated from moby's swagger by bollard-stubs.
//!
//! Re-exported rather than written again, so berth's wire format follows the swagger exactly. The
//! whole generated module is reachable as [`generated`] for the models not named here.

pub use bollard_stubs::models as generated;

pub use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse,
    ContainerPruneResponse, ContainerState, ContainerStateStatusEnum, ContainerStatsResponse,
    ContainerSummary, ContainerSummaryStateEnum, ContainerTopResponse, ContainerUpdateBody,
    ContainerUpdateResponse, ContainerWaitExitError, ContainerWaitResponse, CreateImageInfo,
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum, ExecConfig,
    ExecInspectResponse, ExecStartConfig, HostConfig, IdResponse, ImageDeleteResponseItem,
    ImageHistoryResponseItem, ImageInspect, ImagePruneResponse, ImageSummary, NetworkingConfig,
    ProgressDetail, PushImageInfo, SystemDataUsageResponse, SystemInfo, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};

/// `GET /system/df` as API versions up to 1.50 answer it and the docker CLI 28
/// reads it (bollard-stubs' `SystemDataUsageResponse` has the newer shape).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of all unpacked layers, each counted once.
    pub layers_size: i64,
    /// Every image, with `SharedSize` and `Containers` filled.
    pub images: Vec<ImageSummary>,
    /// Every container, with `SizeRw` and `SizeRootFs` filled.
    pub containers: Vec<ContainerSummary>,
    /// Volumes (berth has none yet).
    pub volumes: Vec<serde_json::Value>,
    /// Build cache records (berth has no builder yet).
    pub build_cache: Vec<serde_json::Value>,
}
