//! `linux.seccomp`: checking the section, compiling it with libseccomp into a
//! BPF program, loading it in the container's process, and handing a notify
//! listener to the agent at `listenerPath`; and berth's default profile.
//!
//! The filter is compiled by the runtime before it clones the container's
//! process (through a cache under the runtime root, since libseccomp's BPF
//! generation costs milliseconds), handed down to the init or exec'd
//! process, and loaded there with `seccomp(2)` directly
//! (`berth_sys::seccomp`), so every filter flag the kernel has can be used
//! even where libseccomp is older than the kernel, and the listener comes back
//! as an owned descriptor. When it is loaded is decided by
//! `process::finalize` (runc's order: with `noNewPrivileges` just before the
//! exec, without it before the capabilities are dropped, since loading a
//! filter then needs CAP_SYS_ADMIN).
//!
//! As runc does, a syscall name this libseccomp does not know is skipped with
//! a debug message rather than refused, so one profile serves several kernels.

mod cache;
mod compile;
mod listener;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use cache::compile_cached;
pub use compile::{compile, Filter};
pub use listener::send_listener;
pub use seccomp_profile::default_profile;

/// What went wrong with a seccomp section or filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The section asks for something invalid; the message names the field.
    #[error("config.json: {0}")]
    Invalid(String),
    /// libseccomp refused an operation while compiling the filter.
    #[error("seccomp: {op}: {source}")]
    Library {
        /// What was being done (which rule, which syscall).
        op: String,
        /// libseccomp's error.
        source: libseccomp::error::SeccompError,
    },
    /// The compiled program could not be taken out of libseccomp.
    #[error("seccomp: export the compiled filter: {0}")]
    Export(std::io::Error),
    /// The kernel refused the filter.
    #[error("seccomp: load the filter (seccomp(2) with flags {flags:#x}): {source}")]
    Load {
        /// The SECCOMP_FILTER_FLAG_* bits passed.
        flags: u32,
        /// The errno.
        source: nix::Error,
    },
    /// The notify listener could not be handed to the agent.
    #[error(
        "seccomp: send the notify listener to linux.seccomp.listenerPath {path}: {op}: {source}"
    )]
    Listener {
        /// The agent's socket.
        path: std::path::PathBuf,
        /// connect or sendmsg.
        op: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Result with a [`SeccompError`].
pub type Result<T, E = SeccompError> = std::result::Result<T, E>;

/// The actions berth implements, as the spec names them.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// The argument operators berth implements.
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The architectures berth can put in a filter (all that libseccomp knows).
pub const ARCHES: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// The filter flags the spec defines and berth understands.
pub const KNOWN_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The kernel's bit for a spec flag.
pub(crate) fn flag_bit(flag: LinuxSeccompFilterFlag) -> u32 {
    use berth_sys::seccomp as sys;
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => sys::FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => sys::FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => sys::FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => sys::FLAG_WAIT_KILLABLE_RECV,
    }
}

/// The known flags this kernel accepts (`features`' `supportedFlags`).
pub fn supported_flags() -> Vec<&'static str> {
    use LinuxSeccompFilterFlag as F;
    [
        F::SeccompFilterFlagTsync,
        F::SeccompFilterFlagLog,
        F::SeccompFilterFlagSpecAllow,
        F::SeccompFilterFlagWaitKillableRecv,
    ]
    .into_iter()
    .zip(KNOWN_FLAGS)
    .filter(|(flag, _)| berth_sys::seccomp::flag_supported(flag_bit(*flag)))
    .map(|(_, name)| *name)
    .collect()
}

/// Whether any rule of the section uses `SCMP_ACT_NOTIFY`.
pub fn uses_notify(seccomp: &LinuxSeccomp) -> bool {
    seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Syscalls the runtime itself makes on its channel between loading the
/// filter and reporting ready: notifying them would wait on an agent that
/// has not yet been given the listener.
const NOT_NOTIFIABLE: &[&str] = &["write", "sendmsg"];

/// Checks the section before anything is made, naming the bad field.
/// (Unknown action, operator, flag and architecture names are already refused
/// by the parser; see [`explain_parse_error`].)
pub fn validate(seccomp: &LinuxSeccomp) -> Result<()> {
    let invalid = |field: String, message: String| {
        Err(SeccompError::Invalid(format!(
            "linux.seccomp.{field}: {message}"
        )))
    };
    let default = seccomp.default_action();
    if default == LinuxSeccompAction::ScmpActNotify {
        return invalid(
            "defaultAction".into(),
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime's own syscalls would wait on the agent)".into(),
        );
    }
    check_errno_ret("defaultErrnoRet", default, seccomp.default_errno_ret())
        .or_else(|m| invalid("defaultErrnoRet".into(), m))?;
    for (i, rule) in seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if rule.names().is_empty() {
            return invalid(
                format!("syscalls[{i}].names"),
                "must name at least one syscall".into(),
            );
        }
        for (j, name) in rule.names().iter().enumerate() {
            if name.is_empty() || name.contains('\0') {
                return invalid(
                    format!("syscalls[{i}].names[{j}]"),
                    format!("{name:?} is not a syscall name"),
                );
            }
            if rule.action() == LinuxSeccompAction::ScmpActNotify
                && NOT_NOTIFIABLE.contains(&name.as_str())
            {
                return invalid(
                    format!("syscalls[{i}].names[{j}]"),
                    format!("SCMP_ACT_NOTIFY cannot be used for {name:?}: the runtime needs it to hand over the listener"),
                );
            }
        }
        check_errno_ret("errnoRet", rule.action(), rule.errno_ret())
            .or_else(|m| invalid(format!("syscalls[{i}].errnoRet"), m))?;
        for (k, arg) in rule
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if arg.index() > 5 {
                return invalid(
                    format!("syscalls[{i}].args[{k}].index"),
                    format!(
                        "{} is out of range (a syscall has six arguments, 0 to 5)",
                        arg.index()
                    ),
                );
            }
            if arg.op() != LinuxSeccompOperator::ScmpCmpMaskedEq
                && arg.value_two().is_some_and(|v| v != 0)
            {
                return invalid(
                    format!("syscalls[{i}].args[{k}].valueTwo"),
                    format!(
                        "only SCMP_CMP_MASKED_EQ uses a second value, not {}",
                        arg.op()
                    ),
                );
            }
        }
    }
    if uses_notify(seccomp) {
        match seccomp.listener_path() {
            None => {
                return invalid(
                    "listenerPath".into(),
                    "must be set when a rule uses SCMP_ACT_NOTIFY".into(),
                )
            }
            Some(p) if !p.is_absolute() => {
                return invalid(
                    "listenerPath".into(),
                    format!("{:?} must be an absolute path", p.display().to_string()),
                )
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// errnoRet is the value of SCMP_ACT_ERRNO and SCMP_ACT_TRACE; the spec says
/// a runtime must fail when it is given with any other action.
fn check_errno_ret(
    field: &str,
    action: LinuxSeccompAction,
    value: Option<u32>,
) -> std::result::Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    match action {
        LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace => {
            if value > u32::from(u16::MAX) {
                return Err(format!(
                    "{value} does not fit the filter's 16-bit return data"
                ));
            }
            Ok(())
        }
        other => Err(format!(
            "{field} is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {other}"
        )),
    }
}

/// Rewrites the parser's message for an unknown name in `linux.seccomp`
/// (serde's "unknown variant `X`, expected one of …") into one that says what
/// kind of name it is: `linux.seccomp.syscalls[3].action: unknown action
/// "SCMP_ACT_FOO"`. `path` is the JSON path of the field. Returns `None` for
/// every other error.
pub fn explain_parse_error(path: &str, message: &str) -> Option<String> {
    if !path.starts_with("linux.seccomp") {
        return None;
    }
    let rest = message.strip_prefix("unknown variant `")?;
    let name = &rest[..rest.find('`')?];
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field);
    let (kind, known): (&str, &[&str]) = match field {
        "action" | "defaultAction" => ("action", ACTIONS),
        "op" => ("operator", OPERATORS),
        "flags" => ("flag", KNOWN_FLAGS),
        "architectures" => ("architecture", ARCHES),
        _ => return None,
    };
    let mut known = known.to_vec();
    if kind == "architecture" {
        known.push("SCMP_ARCH_NATIVE");
    }
    Some(format!(
        "{path}: unknown {kind} {name:?} (berth knows {})",
        known.join(", ")
    ))
}

/// The spec's name for an architecture (`SCMP_ARCH_X86_64`).
pub fn arch_name(arch: Arch) -> String {
    // The spec's names are the serde names; serialising an enum never fails.
    serde_json::to_value(arch)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
