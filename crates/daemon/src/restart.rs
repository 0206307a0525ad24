//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`) with docker's
//! back-off: the delay before a restart starts at 100 ms and doubles with each restart that
//! follows a run shorter than 10 s, up to one minute; a longer run resets it.

use std::time::Duration;

use api_types::models::generated::RestartPolicyNameEnum;
use api_types::models::HostConfig;

use crate::state::ContainerRecord;

/// The first delay.
const FIRST: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The policy's name, `no` when none.
pub fn policy_name(host: &HostConfig) -> RestartPolicyNameEnum {
    host.restart_policy
        .as_ref()
        .and_then(|p| p.name)
        .unwrap_or(RestartPolicyNameEnum::NO)
}

/// Whether the container's policy restarts it after this exit.
pub fn should_restart(r: &ContainerRecord, exit_code: i64) -> bool {
    if r.host_config.auto_remove == Some(true) || r.manually_stopped {
        return false;
    }
    match policy_name(&r.host_config) {
        RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
        RestartPolicyNameEnum::ON_FAILURE => {
            let max = r
                .host_config
                .restart_policy
                .as_ref()
                .and_then(|p| p.maximum_retry_count)
                .unwrap_or(0);
            exit_code != 0 && (max <= 0 || r.restart_count < max)
        }
        _ => false,
    }
}

/// Whether the policy restarts the container when berthd starts (dockerd's rule).
pub fn start_with_daemon(r: &ContainerRecord) -> bool {
    match policy_name(&r.host_config) {
        RestartPolicyNameEnum::ALWAYS => true,
        RestartPolicyNameEnum::UNLESS_STOPPED => !r.manually_stopped,
        _ => false,
    }
}

/// The next delay, given the previous one and how long the last run lasted.
pub fn next_delay(previous: Option<Duration>, ran: Duration) -> Duration {
    match previous {
        Some(d) if ran < RESET_AFTER => (d * 2).min(MAX),
        _ => FIRST,
    }
}

/// Refuses what dockerd refuses about a policy.
pub fn validate(host: &HostConfig) -> Result<(), String> {
    let name = policy_name(host);
    let max = host
        .restart_policy
        .as_ref()
        .and_then(|p| p.maximum_retry_count)
        .unwrap_or(0);
    if max < 0 {
        return Err("maximum retry count cannot be negative".into());
    }
    if max > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
        return Err(format!(
            "maximum retry count can only be used with 'on-failure'; got {name}"
        ));
    }
    if host.auto_remove == Some(true)
        && !matches!(
            name,
            RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY
        )
    {
        return Err("can't create 'AutoRemove' container with restart policy".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_then_resets() {
        let d = next_delay(None, Duration::ZERO);
        assert_eq!(d, FIRST);
        let d = next_delay(Some(d), Duration::from_secs(1));
        assert_eq!(d, FIRST * 2);
        assert_eq!(next_delay(Some(MAX), Duration::ZERO), MAX);
        assert_eq!(next_delay(Some(MAX), Duration::from_secs(11)), FIRST);
    }
}
