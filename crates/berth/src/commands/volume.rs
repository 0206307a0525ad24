//! `berth volume create|ls|inspect|rm|prune`, with docker's flags and output.

use serde_json::{json, Value};

use crate::cli::{VolumeCreateArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::{self, write_stdout};
use crate::units;

const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Availability", "AVAILABILITY"),
    ("Group", "GROUP"),
    ("Status", "STATUS"),
];

/// `berth volume create`: prints the volume's name.
pub async fn create(conn: &Connection, args: &VolumeCreateArgs) -> Result<()> {
    let name = match (&args.name, &args.name_flag) {
        (Some(a), Some(b)) if a != b => {
            return Err(CliError::Invalid(format!(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg ({b} and {a})"
            )))
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    let v = conn
        .docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name,
            driver: Some(args.driver.clone()),
            driver_opts: Some(super::key_values(&args.opt, "opt")?),
            labels: Some(super::key_values(&args.label, "label")?),
            cluster_volume_spec: None,
        })
        .await?;
    write_stdout(&format!("{}\n", v.name))
}

/// Go's natural order, which `docker volume ls` sorts by: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let ta = da.iter().skip_while(|c| **c == b'0').count();
                let tb = db.iter().skip_while(|c| **c == b'0').count();
                let ord = ta
                    .cmp(&tb)
                    .then_with(|| da[na - ta..].cmp(&db[nb - tb..]))
                    .then_with(|| na.cmp(&nb));
                if ord.is_ne() {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// `berth volume ls`.
pub async fn ls(conn: &Connection, args: &VolumeLsArgs) -> Result<()> {
    let filters = super::parse_filters(&args.filter)?;
    let r = conn
        .docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
            filters: Some(filters),
        }))
        .await?;
    let mut list = r.volumes.unwrap_or_default();
    list.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    for w in r.warnings.iter().flatten() {
        eprintln!("{w}");
    }
    if args.quiet {
        let text: String = list.iter().map(|v| format!("{}\n", v.name)).collect();
        return write_stdout(&text);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|v| {
            let mut labels: Vec<String> =
                v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let usage = v.usage_data.as_ref();
            json!({
                "Driver": v.driver,
                "Name": v.name,
                "Scope": v.scope.map(|s| s.to_string()).unwrap_or_default(),
                "Mountpoint": v.mountpoint,
                "Labels": labels.join(","),
                "Links": usage.filter(|u| u.ref_count >= 0).map_or("N/A".to_string(), |u| u.ref_count.to_string()),
                "Size": usage.filter(|u| u.size >= 0).map_or("N/A".to_string(), |u| units::human_size(u.size)),
                // Swarm cluster volumes' fields; a local volume has none.
                "Availability": "N/A",
                "Group": "N/A",
                "Status": "N/A",
            })
        })
        .collect();
    output::print_rows(
        args.format.as_deref(),
        "table {{.Driver}}\t{{.Name}}",
        HEADERS,
        &rows,
    )
}

/// `berth volume inspect`: the daemon's JSON, ordered and indented as docker prints it.
pub async fn inspect(conn: &Connection, names: &[String], format: Option<&str>) -> Result<()> {
    let mut raws = Vec::new();
    let mut failed = false;
    for name in names {
        let (status, body) = conn
            .get_raw(&format!("/volumes/{}", super::container::url_escape(name)))
            .await?;
        if status == 200 {
            // The docker CLI decodes the volume and encodes it again, so its fields come out in
            // Go's struct order, which is alphabetical, as a sorted map writes them.
            let v: Value = serde_json::from_slice(&body).map_err(|e| {
                CliError::Transport(format!("the daemon's inspect answer is not JSON: {e}"))
            })?;
            raws.push(serde_json::to_vec(&v).map_err(|e| {
                CliError::Transport(format!("encode the daemon's inspect answer: {e}"))
            })?);
        } else {
            failed = true;
            eprintln!("{}", super::container::daemon_message(status, &body));
        }
    }
    let text = output::inspect_text(&raws, format)?;
    write_stdout(&text)?;
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth volume rm`: prints each removed name.
pub async fn rm(conn: &Connection, args: &VolumeRmArgs) -> Result<()> {
    let mut failed = false;
    for name in &args.volumes {
        let opts = bollard::query_parameters::RemoveVolumeOptions { force: args.force };
        match conn.docker.remove_volume(name, Some(opts)).await {
            Ok(()) => write_stdout(&format!("{name}\n"))?,
            Err(e) => {
                failed = true;
                eprintln!("{}", CliError::from(e));
            }
        }
    }
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth volume prune`: unused anonymous volumes, or all unused ones with `--all`.
pub async fn prune(conn: &Connection, args: &VolumePruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !args.force && !super::container::confirm(warning)? {
        return Ok(());
    }
    let mut filters = super::parse_filters(&args.filter)?;
    if args.all {
        filters.insert("all".to_string(), vec!["true".to_string()]);
    }
    let r = conn
        .docker
        .prune_volumes(Some(bollard::query_parameters::PruneVolumesOptions {
            filters: Some(filters),
        }))
        .await?;
    let mut text = String::new();
    let deleted = r.volumes_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for d in deleted {
            text.push_str(&format!("{d}\n"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(r.space_reclaimed.unwrap_or(0))
    ));
    write_stdout(&text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_sort_naturally() {
        let mut v = vec!["v10", "v9", "a", "v09x"];
        v.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(v, ["a", "v9", "v09x", "v10"]);
    }
}
