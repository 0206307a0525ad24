//! Volumes and bind mounts through berthd, driven by the real docker CLI (and the berth CLI for
//! `volume ls`): a private berthd per test (its own data root, exec root, socket and cgroup
//! parent in a sandbox), the busybox image loaded, and what a user sees from inside containers.
//! At the end: no mount left under the sandbox (the copy-up mounts included), no monitor, no
//! cgroup; the sandbox's teardown (also on failure) removes the host directories it made.
//!
//! Needs root, the docker CLI, Debian's busybox-static, and the binaries built first:
//! `cargo build -p berthd -p berth-monitor -p berth`.

mod compat_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use compat_common::berthd::{stderr, stdout, Berthd, T};
use compat_common::image::BusyboxImage;
use compat_common::{require_root, require_tool, run, Sandbox};
use sha2::{Digest, Sha256};

/// The propagation findmnt reports for the mount holding `path`.
fn findmnt_propagation(path: &Path) -> String {
    let out = Command::new("findmnt")
        .args(["-n", "-o", "PROPAGATION", "-T"])
        .arg(path)
        .output()
        .expect("run findmnt");
    stdout(&out).trim().to_string()
}

/// Runs a command that must succeed (mount, umount).
fn run_ok(args: &[&str]) {
    let out = run(Command::new(args[0]).args(&args[1..]), T);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

/// Unmounts (recursively, lazily) a mount the test made, also when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Reads every regular file of a tar into memory, in order.
fn read_tar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().expect("read the archive's entries") {
        let mut entry = entry.expect("read an archive entry");
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().expect("an entry's path").display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("read an entry");
        out.push((path, data));
    }
    out
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(1_704_067_200);
    h
}

/// `busyvol:latest`: the busybox image with a second layer holding `/data` (owned by 1000,
/// mode 0750, a file and a symlink to /etc/passwd) and `VOLUME /data` in its config, written
/// as a docker-archive beside `busybox_archive`.
fn image_with_a_volume(busybox_archive: &Path) -> PathBuf {
    let files = read_tar(&std::fs::read(busybox_archive).expect("read the busybox archive"));
    let find = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("{name} is in the busybox archive"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&find("manifest.json")).expect("manifest.json is JSON");
    let config_name = manifest[0]["Config"].as_str().expect("a config").to_owned();
    let mut config: serde_json::Value =
        serde_json::from_slice(&find(&config_name)).expect("the config is JSON");
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar_header(tar::EntryType::Directory, 0o750, 0, 1000);
    layer
        .append_data(&mut h, "data", std::io::empty())
        .expect("append data/");
    let seed = b"seeded\n";
    let mut h = tar_header(tar::EntryType::Regular, 0o640, seed.len() as u64, 1000);
    layer
        .append_data(&mut h, "data/seed", &seed[..])
        .expect("append data/seed");
    let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0, 0);
    layer
        .append_link(&mut h, "data/passwd", "/etc/passwd")
        .expect("append data/passwd");
    let layer = layer.into_inner().expect("finish the layer");
    let layer_hex = sha256_hex(&layer);
    config["config"]["Volumes"] = serde_json::json!({"/data": {}});
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(format!("sha256:{layer_hex}").into());
    config["history"]
        .as_array_mut()
        .expect("history")
        .push(serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": "VOLUME /data"}));
    let config = serde_json::to_vec(&config).expect("encode the config");
    let new_config_name = format!("{}.json", sha256_hex(&config));
    let mut layers: Vec<serde_json::Value> =
        manifest[0]["Layers"].as_array().expect("layers").clone();
    let layer_name = format!("{layer_hex}/layer.tar");
    layers.push(layer_name.clone().into());
    let new_manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": new_config_name,
        "RepoTags": ["busyvol:latest"],
        "Layers": layers,
    }]))
    .expect("encode the manifest");
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar_header(tar::EntryType::Regular, 0o644, data.len() as u64, 0);
        out.append_data(&mut h, name, data)
            .unwrap_or_else(|e| panic!("append {name}: {e}"));
    };
    for (name, data) in &files {
        if name.ends_with("/layer.tar") {
            add(name, data);
        }
    }
    add(&layer_name, &layer);
    add(&new_config_name, &config);
    add("manifest.json", &new_manifest);
    let path = busybox_archive.with_file_name("busyvol-docker.tar");
    std::fs::write(&path, out.into_inner().expect("finish the archive"))
        .expect("write the busyvol archive");
    path
}

/// A berthd with `busybox:latest` and `busyvol:latest` (busybox plus `VOLUME /data`) loaded.
fn berthd_with_images(name: &str) -> Berthd {
    require_root("berthd");
    require_tool("docker", "docker-cli");
    require_tool("findmnt", "util-linux");
    let sandbox = Sandbox::new(name);
    let archive = BusyboxImage::build().write_docker_archive(&sandbox.root, "busybox:latest");
    let with_volume = image_with_a_volume(&archive);
    let d = Berthd::start(sandbox);
    for (archive, tag) in [
        (&archive, "busybox:latest"),
        (&with_volume, "busyvol:latest"),
    ] {
        let loaded = d.ok(&["load", "-i", archive.to_str().expect("utf-8 path")]);
        assert!(
            loaded.contains(&format!("Loaded image: {tag}")),
            "docker load said: {loaded}"
        );
    }
    d
}

#[test]
fn named_volumes_and_binds_reach_containers() {
    let mut d = berthd_with_images("vol-named");

    // A named volume outlives the container that wrote to it.
    assert_eq!(
        d.ok(&["volume", "create", "--label", "a=1", "shared"]),
        "shared\n"
    );
    assert_eq!(
        d.ok(&["volume", "create", "shared"]),
        "shared\n",
        "idempotent"
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data:ro",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "hello\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo more >> /data/f && cat /data/f",
    ]);
    assert_eq!(
        out, "hello\nmore\n",
        "a volume stays writable in a read-only rootfs"
    );
    // Made on demand by -v, and by --mount type=volume.
    d.ok(&["run", "--rm", "-v", "ondemand:/x", "busybox", "true"]);
    d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mounted,dst=/m",
        "busybox",
        "ls",
        "/m",
    ]);
    let names = d.volumes();
    for n in ["ondemand", "mounted", "shared"] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let inspect = d.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.a}} {{.Mountpoint}}",
        "shared",
    ]);
    let data_root = d.sandbox.root.join("data");
    assert_eq!(
        inspect,
        format!(
            "shared local local 1 {}\n",
            data_root.join("volumes/shared/_data").display()
        )
    );
    let out = d.docker(&["volume", "create", "bad/name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["volume", "create", "-d", "nfs", "remote"]);
    assert_eq!(out.status.code(), Some(1), "another driver is refused");

    // Binds of a host directory: visible, writable, read-only with :ro.
    let host = d.sandbox.dir("host-dir");
    std::fs::write(host.join("from-host"), "on the host\n").expect("write a host file");
    let spec = format!("{}:/h", host.display());
    let out = d.ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/h/from-host"]);
    assert_eq!(out, "on the host\n");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo back > /h/from-ctr",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("from-ctr")).expect("the container's file"),
        "back\n"
    );
    let ro = format!("{}:/h:ro", host.display());
    let out = d.docker(&["run", "--rm", "-v", &ro, "busybox", "touch", "/h/x"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "EROFS: {}",
        stderr(&out)
    );
    assert!(!host.join("x").exists());
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/h,readonly", host.display()),
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--mount readonly: {}",
        stderr(&out)
    );
    // A single file, read-only; inspect shows the bind as dockerd does.
    let file = d.sandbox.root.join("host-file");
    std::fs::write(&file, "one file\n").expect("write a host file");
    let spec = format!("{}:/etc/one:ro", file.display());
    let id = d.ok(&["create", "-v", &spec, "busybox", "cat", "/etc/one"]);
    let id = id.trim();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .Mounts}}", id]),
        format!(
            "[{{\"Type\":\"bind\",\"Source\":\"{}\",\"Destination\":\"/etc/one\",\"Mode\":\"ro\",\"RW\":false,\"Propagation\":\"rprivate\"}}]\n",
            file.display()
        )
    );
    assert_eq!(d.ok(&["start", "-a", id]), "one file\n");
    d.ok(&["rm", id]);
    // Slave propagation needs a shared (or slave) source mount, as dockerd checks; a shared
    // one made here passes its later mounts into the running container.
    let slave = format!(
        "type=bind,src={},dst=/p,bind-propagation=rslave",
        host.display()
    );
    let out = d.docker(&["run", "--rm", "--mount", &slave, "busybox", "true"]);
    if findmnt_propagation(&host).starts_with("private") {
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("but it is not a shared or slave mount"),
            "{}",
            stderr(&out)
        );
    } else {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let shared = d.sandbox.dir("shared-src");
    let shared_str = shared.to_str().expect("utf-8 path");
    run_ok(&["mount", "--bind", shared_str, shared_str]);
    let shared_mount = Unmount(shared.clone());
    run_ok(&["mount", "--make-shared", shared_str]);
    let spec = format!("type=bind,src={shared_str},dst=/p,bind-propagation=rslave");
    let id = d.ok(&["run", "-d", "--mount", &spec, "busybox", "sleep", "600"]);
    let id = id.trim();
    std::fs::create_dir(shared.join("late")).expect("mkdir late");
    run_ok(&[
        "mount",
        "-t",
        "tmpfs",
        "late",
        &format!("{shared_str}/late"),
    ]);
    // Propagation happens within mount(2): the container sees it at once.
    let seen = d.ok(&[
        "exec",
        id,
        "grep",
        "-c",
        " /p/late ",
        "/proc/self/mountinfo",
    ]);
    assert_eq!(seen, "1\n", "a host mount reached the rslave bind");
    d.ok(&["rm", "-f", id]);
    drop(shared_mount);
    // -v makes a missing host directory, as dockerd does.
    let missing = d.sandbox.root.join("made-by-v");
    let spec = format!("{}:/made", missing.display());
    d.ok(&["run", "--rm", "-v", &spec, "busybox", "true"]);
    assert!(missing.is_dir(), "-v created {}", missing.display());
    // --mount type=bind of a missing source fails with dockerd's message, making nothing.
    let gone = d.sandbox.root.join("no-such-dir");
    let out = d.docker(&[
        "run",
        "--name",
        "never",
        "--mount",
        &format!("type=bind,src={},dst=/x", gone.display()),
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            gone.display()
        )),
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "", "no container was left");
    assert!(!gone.exists());
    // Destinations dockerd refuses.
    let out = d.docker(&["run", "--rm", "-v", "shared:/", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("destination can't be '/'"),
        "{}",
        stderr(&out)
    );
    // tmpfs through --mount.
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1m",
        "busybox",
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(out.starts_with("tmpfs /t tmpfs"), "{out}");
    assert!(out.contains("size=1024k"), "{out}");

    // In use: refused with dockerd's message (and 409), then removable once the user is gone.
    let id = d.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "shared:/data",
        "busybox",
        "true",
    ]);
    let id = id.trim();
    let out = d.docker(&["volume", "rm", "shared"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: remove shared: volume is in use - [{id}]")
    );
    // --volumes-from shares the volume, read-only with :ro.
    let out = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "user",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "hello\nmore\n");
    let out = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "user:ro",
        "busybox",
        "touch",
        "/data/g",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mounts = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Driver}}{{end}}",
        "user",
    ]);
    assert_eq!(mounts, "volume shared /data true local\n");
    let binds = d.ok(&["inspect", "-f", "{{.HostConfig.Binds}}", "user"]);
    assert_eq!(binds, "[shared:/data]\n");
    // A berthd killed and started again still knows who uses the volume.
    d.kill9();
    d.spawn();
    let out = d.docker(&["volume", "rm", "shared"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "after a restart: {}",
        stderr(&out)
    );
    d.ok(&["rm", "user"]);
    assert_eq!(d.ok(&["volume", "rm", "shared"]), "shared\n");
    let out = d.docker(&["volume", "inspect", "shared"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such volume"), "{}", stderr(&out));
    assert_eq!(d.ok(&["volume", "rm", "-f", "shared"]), "shared\n");

    // The local driver's bind of a host directory (type=none,o=bind,device=…); other
    // options are refused.
    let device = d.sandbox.dir("device");
    let opt = format!("device={}", device.display());
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &opt,
        "hostvol",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "hostvol:/hv",
        "busybox",
        "sh",
        "-c",
        "echo dev > /hv/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(device.join("f")).expect("the volume's file on its device"),
        "dev\n"
    );
    d.ok(&["volume", "rm", "hostvol"]);
    assert!(
        device.join("f").exists(),
        "removing the volume kept the device's files"
    );
    let out = d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "tmpvol",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not supported by berthd yet"),
        "{}",
        stderr(&out)
    );

    // berth volume ls prints what docker volume ls prints, against the same berthd.
    d.ok(&["volume", "create", "--label", "team=x", "v10"]);
    d.ok(&["volume", "create", "v9"]);
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &["volume", "ls", "--filter", "label=team=x"],
        &[
            "volume",
            "ls",
            "--filter",
            "name=v1",
            "--format",
            "{{.Name}}: {{.Labels}}",
        ],
        &["volume", "ls", "--format", "json"],
        &["volume", "ls", "--filter", "dangling=true", "-q"],
        &["volume", "ls", "--filter", "dangling=false", "-q"],
        &["volume", "inspect", "v10"],
    ] {
        let docker = d.docker(args);
        let berth = d.berth(args);
        assert_eq!(
            (stdout(&berth), berth.status.code()),
            (stdout(&docker), docker.status.code()),
            "{args:?}: berth stderr: {}",
            stderr(&berth)
        );
    }
    let ls = stdout(&d.berth(&["volume", "ls"]));
    assert!(
        ls.starts_with("DRIVER    VOLUME NAME\nlocal     mounted\n"),
        "{ls}"
    );
    d.finish();
}

#[test]
fn anonymous_volumes_and_copy_up() {
    let d = berthd_with_images("vol-anon");

    // The image's VOLUME gets an anonymous volume holding the image's /data, owners and modes
    // kept, the symlink copied as a symlink.
    let out = d.ok(&[
        "run",
        "--name",
        "seeded",
        "busyvol",
        "sh",
        "-c",
        "cat /data/seed; stat -c '%u:%g %a' /data /data/seed; readlink /data/passwd",
    ]);
    assert_eq!(out, "seeded\n1000:1000 750\n1000:1000 640\n/etc/passwd\n");
    let anon = d.volumes();
    assert_eq!(anon.len(), 1, "{anon:?}");
    assert_eq!(anon[0].len(), 64, "an anonymous volume's name: {anon:?}");
    let label = d.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &anon[0]]);
    assert_eq!(label, "{\"com.docker.volume.anonymous\":\"\"}\n");
    let mounts = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
        "seeded",
    ]);
    assert_eq!(mounts, format!("volume {} /data\n", anon[0]));
    // rm without -v keeps it (prune takes it), rm -v takes it.
    d.ok(&["rm", "seeded"]);
    assert_eq!(d.volumes(), anon);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(&anon[0]), "{pruned}");
    assert!(d.volumes().is_empty());
    d.ok(&["run", "--name", "again", "busyvol", "true"]);
    assert_eq!(d.volumes().len(), 1);
    d.ok(&["rm", "-v", "again"]);
    assert!(d.volumes().is_empty(), "rm -v removed the anonymous volume");

    // `-v /path` and --rm: nothing left behind.
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo x > /scratch/f",
    ]);
    d.ok(&["run", "--rm", "busyvol", "cat", "/data/seed"]);
    assert!(d.volumes().is_empty(), "--rm left {:?}", d.volumes());

    // A named volume is filled from the image only while it is empty; nocopy skips it.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/group",
    ]);
    assert!(out.starts_with("root:x:0:"), "{out}");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "sh",
        "-c",
        "echo mine > /etc/group",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/group",
    ]);
    assert_eq!(out, "mine\n", "a used volume is not filled again");
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "empty:/etc:nocopy",
        "busybox",
        "ls",
        "/etc",
    ]);
    assert_eq!(out, "", "nocopy");
    // A named volume is not removed by rm -v or --rm; prune takes it only with --all.
    d.ok(&["run", "--rm", "-v", "kept:/k", "busybox", "true"]);
    d.ok(&["volume", "prune", "-f"]);
    assert!(d.volumes().contains(&"kept".to_string()));
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Local Volumes 3 0"), "docker system df: {df}");
    let verbose = d.ok(&["system", "df", "-v"]);
    assert!(
        verbose
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["kept", "0", "0B"]),
        "docker system df -v: {verbose}"
    );
    // Volumes made on demand and removed with their container are announced.
    // Until the next second: the stream ends then, with every event of this one.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        + 1)
    .to_string();
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert!(events.contains("create kept\n"), "{events}");
    assert!(events.contains("destroy "), "{events}");
    d.ok(&["volume", "prune", "-af"]);
    assert!(d.volumes().is_empty(), "{:?}", d.volumes());
    d.finish();
}
