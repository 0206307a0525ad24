//! Daemon start-up: the loaded records registered, monitors of running containers
//! re-attached, and creates or removals cut off by a crash finished.

use monitor_protocol::{ExitStatus, Request};

use super::{lock, Container};
use crate::monitor_client::{self};
use crate::state::{ContainerRecord, Status};
use crate::{blocking, now, Daemon};

impl Daemon {
    /// Registers the records loaded at start-up and reconnects to the monitors of running
    /// containers (or records the exits they saw while berthd was down).
    pub(crate) async fn restore(&self, records: Vec<ContainerRecord>) {
        let inner = &self.inner;
        for record in records {
            if record.rootfs.typ.is_empty() {
                // A create cut off by a crash: no one was told of this container.
                let images = inner.images.clone();
                let id = record.id.clone();
                let _ = blocking(move || {
                    let _ = crate::store_read(&images).remove_container(&id);
                    Ok(())
                })
                .await;
                let _ = std::fs::remove_dir_all(inner.container_dir(&record.id));
                for f in inner.release_volumes(&record.id, &record.mounts, true) {
                    tracing::warn!("container {}: {f}", record.id);
                }
                continue;
            }
            let status = record.state.status;
            let c = Container::new(record.clone(), &inner.network_index);
            {
                let mut reg = lock(&inner.containers);
                reg.by_name.insert(record.name.clone(), record.id.clone());
                reg.by_id.insert(record.id.clone(), c.clone());
            }
            let socket = inner.socket(&record.id);
            match status {
                Status::Running => match monitor_client::send(&socket, &record.id, Request::Wait)
                    .await
                {
                    Ok(w) => {
                        crate::health::start(inner.clone(), c.clone(), c.exit_count());
                        inner.watch_exit(c, w)
                    }
                    Err(_) => {
                        let exit = inner
                            .exit_from_state_file(&record.id)
                            .unwrap_or(ExitStatus {
                                code: 255,
                                finished_at: now(),
                                oom_killed: false,
                            });
                        inner.on_exit(&c, exit);
                    }
                },
                Status::Created if socket.exists() => {
                    // berthd died between making the container and starting it: the monitor
                    // holds a container nobody asked to run any more.
                    let _ = monitor_client::call(&socket, &record.id, Request::Kill { signal: 9 })
                        .await;
                    inner.clean_bundle(&record.id);
                }
                Status::Removing => {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        if let Err(e) = inner.remove_container(&c, true, false).await {
                            tracing::warn!("container {}: finishing its removal: {e}", c.id);
                        }
                    });
                }
                Status::Exited if crate::restart::start_with_daemon(&record) => {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        if let Err(e) = inner.start_container(&c).await {
                            tracing::warn!("container {}: restart policy at start-up: {e}", c.id);
                        }
                    });
                }
                _ => {}
            }
        }
    }
}
