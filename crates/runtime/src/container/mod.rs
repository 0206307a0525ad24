//! The lifecycle verbs of the OCI runtime spec, one file each.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod supervise;
pub mod update;

pub use create::{create, CreateOptions};
pub use delete::delete;
pub use exec::{exec, ExecOptions};
pub use kill::{kill, parse_signal};
pub use list::{list, state};
pub use pause::{pause, resume};
pub use run::run;
pub use start::start;
pub use update::update;
