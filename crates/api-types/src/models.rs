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
