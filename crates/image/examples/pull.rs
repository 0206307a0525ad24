//! A small driver of the registry client, for benchmarks and by hand:
//!
//! ```text
//! cargo run -p image --example pull -- --root DIR pull REF [--platform os/arch]
//! cargo run -p image --example pull -- --root DIR push REF
//! cargo run -p image --example pull -- --root DIR load ARCHIVE-OR-LAYOUT
//! cargo run -p image --example pull -- --root DIR tag SOURCE TARGET
//! ```
//!
//! Options before the verb: `--root DIR` (the store; required),
//! `--insecure-registry HOST` (repeatable), `--quiet` (no progress lines),
//! `--copy` (the copying snapshotter instead of probing for overlay),
//! `--settle` (flush what the verb named to disk before exiting, as berthd
//! does in the background after answering; without it, the next open of the
//! store does it, and after a machine crash before then that open checks
//! and remakes what the pull named, or drops it, rather than show it torn).
//! Progress prints as docker's lines (`ID: status`), byte counts omitted.

use image::manifest::Platform;
use image::reference::Reference;
use image::registry::{RegistryClient, RegistryOptions};
use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: pull --root DIR [--insecure-registry HOST]... [--quiet] [--copy] [--settle] (pull REF [--platform P] | push REF | load PATH | tag SRC DST)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut root: Option<PathBuf> = None;
    let mut options = RegistryOptions::default();
    let mut quiet = false;
    let mut copy = false;
    let mut settle = false;
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--insecure-registry" => match args.next() {
                Some(h) => options.insecure_registries.push(h),
                None => return usage(),
            },
            "--quiet" => quiet = true,
            "--copy" => copy = true,
            "--settle" => settle = true,
            _ => rest.push(a),
        }
    }
    let Some(root) = root else { return usage() };
    let store_options = StoreOptions {
        snapshotter: copy.then_some(SnapshotterKind::Copy),
        ..Default::default()
    };
    let mut store = match Store::open_with(&root, store_options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut show = move |p: image::progress::Progress| {
        if quiet || (p.total.is_some() && p.status != "Pushing") {
            return;
        }
        if p.id.is_empty() {
            println!("{}", p.status);
        } else {
            println!("{}: {}", p.id, p.status);
        }
    };
    let client = RegistryClient::new(options);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match rest
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["pull", name, tail @ ..] => {
                let platform: Option<Platform> = match tail {
                    [] => None,
                    ["--platform", p] => Some(p.parse().map_err(|e| format!("{e}"))?),
                    _ => return Err("unexpected arguments after pull REF".into()),
                };
                let r = Reference::parse(name).map_err(|e| e.to_string())?;
                if r.tag().is_none() && r.digest().is_none() && !quiet {
                    println!("Using default tag: latest");
                }
                store
                    .pull(&client, &r, platform.as_ref(), &mut show)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            ["push", name] => store
                .push(&client, name, &mut show)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ["load", path] => store
                .load_archive(std::path::Path::new(path), &mut show)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ["tag", src, dst] => store.tag(src, dst).map(|_| ()).map_err(|e| e.to_string()),
            _ => Err("unknown verb".into()),
        }
    });
    let result = result.and_then(|()| {
        if settle {
            store
                .settler()
                .settle()
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e == "unknown verb" => usage(),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
