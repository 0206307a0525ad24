//! The contract between berthd and a container's monitor (`berth-monitor`).
//!
//! Owns: the monitor's start-up configuration ([`MonitorConfig`], a JSON file berthd writes and
//! passes as the monitor's only argument), the state file the monitor keeps ([`MonitorState`],
//! replaced atomically, so berthd finds a container's exit even when it was down), and the
//! requests and answers on the monitor's unix socket, with the frame format of the streams that
//! follow an attach or an exec.
//!
//! Must never: do I/O beyond encoding and decoding bytes, or depend on tokio or hyper (berthd is
//! async, the monitor is a single-threaded poll loop; both speak this).
//!
//! # The socket protocol (version [`PROTOCOL_VERSION`])
//!
//! One request per connection. The client writes one JSON line, an [`Envelope`] holding a
//! [`Request`]; the monitor answers with one JSON line, a [`Response`]. After an `Attach` or an
//! `Exec` answered with [`Response::Ok`] / [`Response::ExecStarted`], the connection carries
//! streams: the monitor sends frames ([`FrameHeader`]: one byte kind, three zero bytes, a
//! big-endian u32 length, then the payload) of stdout, stderr and finally, for an exec, its exit
//! code; the client writes raw stdin bytes and half-closes its side to close the process's stdin.
//! A `Wait` is answered only when the container has exited.
//!
//! May use: serde, serde_json, oci-spec (the OCI process of an exec).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; a monitor refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a monitor is started with: everything it needs to make and supervise one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// The protocol version berthd speaks.
    pub version: u32,
    /// The container's ID (also its ID in the runtime).
    pub id: String,
    /// The OCI bundle: `config.json` and the `rootfs` directory the monitor mounts on.
    pub bundle: PathBuf,
    /// The runtime's state directory (shared by all monitors of one berthd).
    pub runtime_root: PathBuf,
    /// The rootfs mount, as the image store describes it (`overlay` or `bind`).
    pub rootfs: RootfsMount,
    /// The json-file log the monitor writes.
    pub log_path: PathBuf,
    /// Rotate the log when it reaches this many bytes (0: never).
    pub log_max_size: u64,
    /// How many log files to keep, the live one included (at least 1).
    pub log_max_files: u32,
    /// Where the monitor keeps its [`MonitorState`].
    pub state_path: PathBuf,
    /// The unix socket the monitor serves; with `.tty` as its extension, the console socket
    /// a `-t` container's pty master arrives on.
    pub socket_path: PathBuf,
    /// Whether the container's stdin is a pipe the monitor feeds (`-i`); else /dev/null.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes its input (`docker run -i`).
    pub stdin_once: bool,
    /// Whether the container has a terminal (`-t`).
    pub tty: bool,
    /// Another OCI runtime binary to make the container with, instead of berth's own
    /// in-process runtime.
    #[serde(default)]
    pub runtime: Option<RuntimeBinary>,
    /// The interfaces the monitor gives the container's own network namespace once it is
    /// made, before the user's program starts (empty: loopback only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Mount the rootfs in a mount namespace of the monitor's own (a slave of the host's), so
    /// the host's mount table does not grow with every running container — which would make
    /// every later container's mount namespace copy, propagation change and pivot_root cost
    /// more. Off when a bind asks for shared propagation back to the host.
    #[serde(default)]
    pub own_mount_namespace: bool,
}

/// One interface of a container on a bridge: a veth pair whose container end is made straight
/// inside the container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// The bridge the host end joins.
    pub bridge: String,
    /// The host end's name (`veth…`, at most 15 bytes).
    pub host_ifname: String,
    /// The name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Its MAC address.
    pub mac: Option<[u8; 6]>,
    /// Its addresses with their prefix lengths.
    pub addresses: Vec<(std::net::IpAddr, u8)>,
    /// The IPv4 default route's gateway (none on an internal network).
    pub gateway: Option<std::net::Ipv4Addr>,
    /// The IPv6 default route's gateway.
    pub gateway6: Option<std::net::Ipv6Addr>,
    /// The MTU, when not the kernel's default.
    pub mtu: Option<u32>,
}

/// A runc-compatible runtime binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeBinary {
    /// The binary.
    pub path: PathBuf,
    /// Its state directory (`--root`).
    pub root: PathBuf,
}

/// The container's rootfs mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsMount {
    /// File-system type (`overlay`, or `bind`).
    pub typ: String,
    /// Mount source.
    pub source: String,
    /// Mount options (`lowerdir=…`, `rbind`, …).
    pub options: Vec<String>,
}

impl RootfsMount {
    /// The overlay's writable layer (`upperdir=`), none for a bind.
    pub fn upper_dir(&self) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
    }

    /// The overlay's read-only layers (`lowerdir=`), top first.
    pub fn lower_dirs(&self) -> Vec<&str> {
        self.options
            .iter()
            .filter_map(|o| o.strip_prefix("lowerdir="))
            .flat_map(|l| l.split(':'))
            .collect()
    }
}

/// What the monitor records about its container, replaced atomically at each change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// The monitor's own pid.
    pub monitor_pid: i32,
    /// The container init's pid on the host (0 before it exists).
    pub pid: i32,
    /// When the user's program started (RFC 3339 with nanoseconds), once started.
    pub started_at: Option<String>,
    /// The exit, once the container has exited.
    pub exit: Option<ExitStatus>,
    /// What went wrong in the monitor's own cleanup, if anything (it has no other log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a container or an exec ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code as a shell reports it (128+N for signal N).
    pub code: i32,
    /// When the exit was seen (RFC 3339 with nanoseconds).
    pub finished_at: String,
    /// Whether the kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// A container's cgroup counters, as `docker stats` needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// CPU time used, in nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU time per CPU, in nanoseconds.
    pub cpu_percpu_ns: Vec<u64>,
    /// CPU time in user mode, in nanoseconds.
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, in nanoseconds.
    pub cpu_kernel_ns: u64,
    /// Memory in use, in bytes.
    pub memory_usage: u64,
    /// The most memory used, in bytes.
    pub memory_max_usage: u64,
    /// The memory limit, in bytes.
    pub memory_limit: u64,
    /// How often the limit was hit.
    pub memory_failcnt: u64,
    /// Page cache, in bytes.
    pub memory_cache: u64,
    /// Processes now.
    pub pids_current: u64,
    /// The process limit (0: none).
    pub pids_limit: u64,
}

/// A request with the protocol version it is written in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The request.
    pub request: Request,
}

/// What berthd asks of a monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the user's program (the container was created when the monitor came up).
    Start,
    /// Stream the container's output, and accept its input when `stdin`.
    Attach {
        /// Send stdout frames.
        stdout: bool,
        /// Send stderr frames.
        stderr: bool,
        /// The client's bytes go to the container's stdin.
        stdin: bool,
    },
    /// Set the container's terminal size.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Send a signal to the container's init.
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// Answer when the container has exited.
    Wait,
    /// The monitor's current state.
    State,
    /// Change the container's resource limits (`docker update`).
    Update {
        /// The new limits, as the OCI config's `linux.resources`.
        resources: Box<oci_spec::runtime::LinuxResources>,
    },
    /// Freeze every process of the container (its cgroup's freezer).
    Pause,
    /// Thaw a paused container.
    Resume,
    /// The container's cgroup counters.
    Stats,
    /// The host pids of the container's processes.
    Pids,
    /// Set the terminal size of an exec started with a terminal.
    ResizeExec {
        /// The exec's pid, as `ExecStarted` gave it.
        pid: i32,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Run a process in the container and stream it like an attach; the exit code ends the stream.
    Exec {
        /// The OCI process to run.
        process: Box<oci_spec::runtime::Process>,
        /// Whether the client sends stdin.
        stdin: bool,
    },
    /// Give the running container one more interface (`docker network connect`).
    Connect {
        /// The interface.
        interface: Interface,
    },
    /// Remove an interface from the running container by its host end's name
    /// (`docker network disconnect`).
    Disconnect {
        /// The host end's name.
        host_ifname: String,
    },
}

/// The monitor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Done; for an attach, the streams follow.
    Ok,
    /// The program started; `pid` is the init's pid on the host.
    Started {
        /// The init's pid.
        pid: i32,
    },
    /// The exec's process runs; its streams follow.
    ExecStarted {
        /// The process's pid on the host.
        pid: i32,
    },
    /// The container has exited.
    Exited(ExitStatus),
    /// The current state.
    State(MonitorState),
    /// The cgroup counters.
    Stats(CgroupStats),
    /// The container's processes.
    Pids {
        /// Host pids.
        pids: Vec<i32>,
    },
    /// The request failed; the text says why.
    Error {
        /// A sentence naming the operation and the cause.
        message: String,
    },
}

/// The kind of a stream frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The process's stdout (or its terminal).
    Stdout,
    /// The process's stderr.
    Stderr,
    /// An exec's exit: a 4-byte big-endian i32 payload. Last frame of an exec stream.
    Exit,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            FrameKind::Stdout => 1,
            FrameKind::Stderr => 2,
            FrameKind::Exit => 3,
        }
    }
}

/// A stream frame's 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload is.
    pub kind: FrameKind,
    /// Payload length in bytes.
    pub len: u32,
}

/// A frame header that is not one this protocol writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub [u8; 8]);

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad monitor frame header {:02x?}", self.0)
    }
}

impl std::error::Error for BadFrame {}

impl FrameHeader {
    /// The header's bytes.
    pub fn encode(self) -> [u8; 8] {
        let l = self.len.to_be_bytes();
        [self.kind.byte(), 0, 0, 0, l[0], l[1], l[2], l[3]]
    }

    /// Reads a header.
    pub fn decode(b: [u8; 8]) -> Result<Self, BadFrame> {
        let kind = match b[0] {
            1 => FrameKind::Stdout,
            2 => FrameKind::Stderr,
            3 => FrameKind::Exit,
            _ => return Err(BadFrame(b)),
        };
        Ok(FrameHeader {
            kind,
            len: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// A whole frame: header and payload.
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(
        &FrameHeader {
            kind,
            len: payload.len() as u32,
        }
        .encode(),
    );
    out.extend_from_slice(payload);
    out
}

/// One line of a json-file log, as docker writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The bytes of the line, newline included when there was one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// A JSON line: `value` then `\n`.
pub fn to_line<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_vec(value)?;
    v.push(b'\n');
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = encode_frame(FrameKind::Stderr, b"abc");
        let h = FrameHeader::decode(f[..8].try_into().expect("8 bytes")).expect("decodes");
        assert_eq!(h.kind, FrameKind::Stderr);
        assert_eq!(h.len, 3);
        assert!(FrameHeader::decode([9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn requests_are_tagged_json() {
        let e = Envelope {
            version: PROTOCOL_VERSION,
            request: Request::Kill { signal: 15 },
        };
        let s = serde_json::to_string(&e).expect("serializes");
        assert_eq!(s, r#"{"version":1,"request":{"op":"kill","signal":15}}"#);
        let back: Envelope = serde_json::from_str(&s).expect("parses");
        assert_eq!(back, e);
    }
}
