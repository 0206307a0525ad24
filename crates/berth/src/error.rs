//! What can go wrong in a berth command, and the exit code docker gives each case.

/// A failed berth command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No daemon answered on the socket.
    #[error("cannot reach berthd at {socket}: {reason}: is berthd running? Start it with: sudo berthd &")]
    NoDaemon {
        /// The socket path tried.
        socket: String,
        /// Why the connection failed.
        reason: String,
    },
    /// The host address is not one berth can use.
    #[error("{0}")]
    BadHost(String),
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// The HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// Talking to the daemon failed below HTTP (a broken stream, bad JSON).
    #[error("error during connect: {0}")]
    Transport(String),
    /// The command line asks for something berth does not do (yet): refused, never ignored.
    #[error("{0}")]
    Unsupported(String),
    /// A flag's value is not valid.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A `--format` template failed.
    #[error("{0}")]
    Template(#[from] crate::template::TemplateError),
    /// A local file or terminal operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A failure whose message is already printed, with the exit code to return.
    #[error("")]
    Status(i32),
    /// A message printed as it is, with an exit code (docker's `Error: …` lines).
    #[error("{1}")]
    Message(i32, String),
}

impl CliError {
    /// The process exit code docker uses for this failure (outside `run`, which maps its own).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Status(code) | Self::Message(code, _) => *code,
            Self::Unsupported(_) | Self::Invalid(_) => 125,
            _ => 1,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

impl From<bollard::errors::Error> for CliError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => Self::Daemon {
                status: status_code,
                message,
            },
            B::DockerStreamError { error } => Self::Daemon {
                status: 500,
                message: error,
            },
            other => Self::Transport(other.to_string()),
        }
    }
}

/// Shorthand for command results.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
