//! Image commands: images, history, tag, rmi, save, load, pull, push, prune, and the per-layer
//! progress display (indicatif bars on a terminal, plain lines otherwise).

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::cli::{
    HistoryArgs, ImagesArgs, LoadArgs, PruneArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::{self, write_stdout};
use crate::units;

/// The header of each `images` field.
pub const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

/// `berth images`.
pub async fn images(conn: &Connection, args: &ImagesArgs) -> Result<()> {
    let mut filters = super::parse_filters(&args.filter)?;
    if let Some(r) = &args.repository {
        filters
            .entry("reference".to_string())
            .or_default()
            .push(r.clone());
    }
    let list = conn
        .docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            all: args.all,
            filters: Some(filters),
            digests: args.digests,
            ..Default::default()
        }))
        .await?;
    let trunc = !args.no_trunc;
    let id_of = |id: &str| {
        if trunc {
            units::short_id(id)
        } else {
            id.to_string()
        }
    };
    if args.quiet {
        let mut seen = Vec::new();
        for i in &list {
            let id = id_of(&i.id);
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        let mut text = seen.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        return write_stdout(&text);
    }
    let mut rows = Vec::new();
    for i in &list {
        let mut tags: Vec<(String, String)> = i
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| {
                let (repo, tag) = super::run::split_reference(t);
                (repo, tag)
            })
            .collect();
        if tags.is_empty() {
            tags.push(("<none>".to_string(), "<none>".to_string()));
        }
        let digest = i
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
            .unwrap_or_else(|| "<none>".to_string());
        for (repo, tag) in tags {
            rows.push(json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "ID": id_of(&i.id),
                "CreatedSince": units::since(i.created),
                "CreatedAt": units::go_time_string(i.created),
                "Size": units::human_size(i.size),
                "VirtualSize": units::human_size(i.size),
                "Containers": if i.containers < 0 { "N/A".to_string() } else { i.containers.to_string() },
                "SharedSize": if i.shared_size < 0 { "N/A".to_string() } else { units::human_size(i.shared_size) },
                "UniqueSize": if i.shared_size < 0 { "N/A".to_string() } else { units::human_size(i.size - i.shared_size) },
            }));
        }
    }
    let default = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    output::print_rows(args.format.as_deref(), default, HEADERS, &rows)
}

/// `berth history`.
pub async fn history(conn: &Connection, args: &HistoryArgs) -> Result<()> {
    let list = conn.docker.image_history(&args.image).await?;
    let trunc = !args.no_trunc;
    if args.quiet {
        let text: String = list
            .iter()
            .map(|h| {
                format!(
                    "{}\n",
                    if trunc {
                        units::short_id(&h.id)
                    } else {
                        h.id.clone()
                    }
                )
            })
            .collect();
        return write_stdout(&text);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = if h.id == "<missing>" {
                h.id.clone()
            } else if trunc {
                units::short_id(&h.id)
            } else {
                h.id.clone()
            };
            let created_by = h.created_by.replace('\t', " ");
            let created_by = if trunc && created_by.chars().count() > 45 {
                let mut s: String = created_by.chars().take(44).collect();
                s.push('…');
                s
            } else {
                created_by
            };
            json!({
                "ID": id,
                "CreatedSince": if args.human { units::since(h.created) } else { units::go_time_string(h.created) },
                "CreatedAt": units::go_time_string(h.created),
                "CreatedBy": created_by,
                "Size": if args.human { units::human_size(h.size) } else { h.size.to_string() },
                "Comment": h.comment,
                "Tags": h.tags.join(", "),
            })
        })
        .collect();
    output::print_rows(
        args.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
            ("Tags", "TAGS"),
        ],
        &rows,
    )
}

/// `berth tag`.
pub async fn tag(conn: &Connection, args: &TagArgs) -> Result<()> {
    let (repo, tag) = super::run::split_reference(&args.target);
    conn.docker
        .tag_image(
            &args.source,
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            }),
        )
        .await?;
    Ok(())
}

/// `berth rmi`.
pub async fn rmi(conn: &Connection, args: &RmiArgs) -> Result<()> {
    let mut failed = false;
    for image in &args.images {
        match conn
            .docker
            .remove_image(
                image,
                Some(bollard::query_parameters::RemoveImageOptions {
                    force: args.force,
                    noprune: args.no_prune,
                    ..Default::default()
                }),
                None,
            )
            .await
        {
            Ok(items) => {
                let mut text = String::new();
                for i in items {
                    if let Some(u) = i.untagged {
                        text.push_str(&format!("Untagged: {u}\n"));
                    }
                    if let Some(d) = i.deleted {
                        text.push_str(&format!("Deleted: {d}\n"));
                    }
                }
                write_stdout(&text)?;
            }
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

/// `berth save`: the archive to `-o` or to stdout (refused on a terminal, as docker does).
pub async fn save(conn: &Connection, args: &SaveArgs) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    if args.output.is_none() && super::stream::stdout_is_terminal() {
        return Err(CliError::Message(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".to_string(),
        ));
    }
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let mut stream = conn.docker.export_images(&names);
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &args.output {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .map_err(CliError::io(format!("create {path}")))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = stream.next().await {
        sink.write_all(&chunk?)
            .await
            .map_err(CliError::io("write the image archive"))?;
    }
    sink.flush()
        .await
        .map_err(CliError::io("write the image archive"))?;
    Ok(())
}

/// `berth load`: streams the archive from `-i` or stdin and shows the daemon's progress.
pub async fn load(conn: &Connection, args: &LoadArgs) -> Result<()> {
    let bytes = match &args.input {
        Some(path) => tokio::fs::read(path)
            .await
            .map_err(CliError::io(format!("read {path}")))?,
        None => {
            use tokio::io::AsyncReadExt;
            if super::stream::stdin_is_terminal() {
                return Err(CliError::Message(
                    1,
                    "requested load from stdin, but stdin is empty".to_string(),
                ));
            }
            let mut buf = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut buf)
                .await
                .map_err(CliError::io("read the archive from stdin"))?;
            buf
        }
    };
    let body = bollard::body_full(bytes.into());
    let stream = conn.docker.import_image(
        bollard::query_parameters::ImportImageOptions {
            quiet: args.quiet,
            ..Default::default()
        },
        body,
        None,
    );
    // The daemon honours quiet itself (no per-layer lines); what it sends is shown, as docker.
    let mut progress = Progress::new(false);
    let mut stream = Box::pin(stream);
    while let Some(item) = stream.next().await {
        let item = item?;
        if let Some(e) = item.error_detail.and_then(|d| d.message) {
            progress.finish();
            return Err(CliError::Daemon {
                status: 500,
                message: e,
            });
        }
        if let Some(s) = item.stream {
            progress.line(&s);
        }
        progress.update(
            item.id.as_deref(),
            item.status.as_deref(),
            item.progress_detail.as_ref().map(|p| (p.current, p.total)),
        );
    }
    progress.finish();
    Ok(())
}

/// `berth pull`.
pub async fn pull(conn: &Connection, args: &PullArgs) -> Result<()> {
    if args.all_tags {
        return Err(super::system::unsupported("pull --all-tags"));
    }
    if args.platform.is_some() {
        return Err(super::system::unsupported("pull --platform"));
    }
    let (name, tag) = super::run::split_reference(&args.image);
    if !args.image.contains(':') && !args.image.contains('@') && !args.quiet {
        write_stdout("Using default tag: latest\n")?;
    }
    pull_to(conn, &name, &tag, args.quiet, false).await?;
    let shown = if args.image.contains(':') || args.image.contains('@') {
        args.image.clone()
    } else {
        format!("{}:latest", args.image)
    };
    write_stdout(&format!("{shown}\n"))
}

/// Pulls `name:tag`, showing progress (on stderr when `to_stderr`, as `run` does).
pub async fn pull_to(
    conn: &Connection,
    name: &str,
    tag: &str,
    quiet: bool,
    to_stderr: bool,
) -> Result<()> {
    let options = bollard::query_parameters::CreateImageOptions {
        from_image: Some(super::run::normalize_name(name)),
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let credentials = super::login::credentials_for_image(name)?;
    let mut stream = Box::pin(conn.docker.create_image(Some(options), None, credentials));
    let mut progress = Progress::new(quiet);
    progress.to_stderr = to_stderr;
    while let Some(item) = stream.next().await {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                progress.finish();
                return Err(e.into());
            }
        };
        if let Some(e) = item.error_detail.and_then(|d| d.message) {
            progress.finish();
            return Err(CliError::Daemon {
                status: 500,
                message: e,
            });
        }
        progress.update(
            item.id.as_deref(),
            item.status.as_deref(),
            item.progress_detail.as_ref().map(|p| (p.current, p.total)),
        );
    }
    progress.finish();
    Ok(())
}

/// `berth push`.
pub async fn push(conn: &Connection, args: &PushArgs) -> Result<()> {
    let (name, tag) = super::run::split_reference(&args.image);
    if !args.image.contains(':') && !args.quiet {
        write_stdout("Using default tag: latest\n")?;
    }
    let credentials = super::login::credentials_for_image(&name)?;
    let mut stream = Box::pin(conn.docker.push_image(
        &name,
        Some(bollard::query_parameters::PushImageOptions {
            tag: Some(tag),
            ..Default::default()
        }),
        credentials,
    ));
    let mut progress = Progress::new(args.quiet);
    while let Some(item) = stream.next().await {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                progress.finish();
                return Err(e.into());
            }
        };
        if let Some(e) = item.error_detail.and_then(|d| d.message) {
            progress.finish();
            return Err(CliError::Daemon {
                status: 500,
                message: e,
            });
        }
        progress.update(
            None,
            item.status.as_deref(),
            item.progress_detail.as_ref().map(|p| (p.current, p.total)),
        );
    }
    progress.finish();
    Ok(())
}

/// `berth image prune`.
pub async fn prune(conn: &Connection, args: &PruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !super::container::confirm(warning)? {
        return Ok(());
    }
    let mut filters = super::parse_filters(&args.filter)?;
    filters.insert("dangling".to_string(), vec![(!args.all).to_string()]);
    let r = conn
        .docker
        .prune_images(Some(bollard::query_parameters::PruneImagesOptions {
            filters: Some(filters),
        }))
        .await?;
    let mut text = String::new();
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        for d in deleted {
            if let Some(u) = d.untagged {
                text.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(d) = d.deleted {
                text.push_str(&format!("deleted: {d}\n"));
            }
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(r.space_reclaimed.unwrap_or(0))
    ));
    write_stdout(&text)
}

/// docker's JSON-progress display: one line per layer, redrawn in place on a terminal (as
/// indicatif bars), printed as plain status lines when output is not a terminal.
pub struct Progress {
    quiet: bool,
    terminal: bool,
    to_stderr: bool,
    multi: indicatif::MultiProgress,
    bars: HashMap<String, indicatif::ProgressBar>,
}

impl Progress {
    /// A display on stdout.
    pub fn new(quiet: bool) -> Self {
        let terminal = super::stream::stdout_is_terminal();
        let multi = indicatif::MultiProgress::with_draw_target(if terminal && !quiet {
            indicatif::ProgressDrawTarget::stdout()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        });
        Self {
            quiet,
            terminal,
            to_stderr: false,
            multi,
            bars: HashMap::new(),
        }
    }

    fn print(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.terminal {
            let _ = self.multi.println(text.trim_end_matches('\n'));
        } else if self.to_stderr {
            eprintln!("{}", text.trim_end_matches('\n'));
        } else {
            let _ = write_stdout(&format!("{}\n", text.trim_end_matches('\n')));
        }
    }

    /// A free-text line (`Loaded image: …`).
    pub fn line(&mut self, text: &str) {
        self.print(text);
    }

    /// One progress message: a layer's status, with byte counts when it has them.
    pub fn update(
        &mut self,
        id: Option<&str>,
        status: Option<&str>,
        bytes: Option<(Option<i64>, Option<i64>)>,
    ) {
        let Some(status) = status else { return };
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            self.print(status);
            return;
        };
        if !self.terminal {
            // docker leaves byte-count updates out when not on a terminal.
            if matches!(bytes, Some((c, t)) if c.unwrap_or(0) > 0 || t.unwrap_or(0) > 0) {
                return;
            }
            self.print(&format!("{id}: {status}"));
            return;
        }
        let bar = self.bars.entry(id.to_string()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new(0));
            bar.set_style(plain_style());
            bar.set_prefix(id.to_string());
            bar
        });
        bar.set_message(status.to_string());
        match bytes {
            Some((Some(current), Some(total))) if total > 0 => {
                bar.set_style(bar_style());
                bar.set_length(total as u64);
                bar.set_position(current as u64);
            }
            _ => {
                bar.set_style(plain_style());
                bar.tick();
            }
        }
    }

    /// Leaves the final state of each line on screen.
    pub fn finish(&mut self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}

/// A layer line without byte counts: `0123456789ab: Pull complete`.
fn plain_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{prefix}: {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

/// docker's bar: `0123456789ab: Downloading [=====>      ]  1.2MB/4.26MB`.
fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {sizes}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key(
            "sizes",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(
                    w,
                    "{}/{}",
                    units::human_size(state.pos() as i64),
                    units::human_size(state.len().unwrap_or(0) as i64)
                );
            },
        )
}
