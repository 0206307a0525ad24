//! Root integration tests of `runtime::rootfs`: each case builds a busybox
//! rootfs, forks a child into new namespaces (with `clone_fork`, so this
//! binary runs without the test harness's threads), and there calls
//! `prepare`, `pivot` and `finish` and looks at the result from inside, as a
//! user of the container would. The parent then checks that nothing leaked
//! into the host's mount table or filesystem.
//!
//! Needs root and Debian's busybox-static; without them it says so and
//! skips.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_sys::process::{clone_fork, Forked};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{alarm, pipe, read, write, Uid};
use oci_spec::runtime::{
    LinuxDeviceBuilder, LinuxDeviceType, LinuxNamespaceType, Mount, MountBuilder, Spec,
};
use runtime::rootfs::{self, CgroupHierarchy, RootfsOptions};

/// Names unique to this run, so parallel runs and other users never meet.
fn unique(tag: &str) -> String {
    format!("berth-rootfs-{tag}-{}", std::process::id())
}

/// A bundle on disk: a busybox rootfs with hostile symlinks, and a host
/// directory and file to bind in. Removed on drop, also when a case fails.
struct Fixture {
    dir: tempfile::TempDir,
    escape_name: String,
}

impl Fixture {
    fn new(tag: &str) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix(&unique(tag))
            .tempdir()
            .map_err(|e| format!("make the bundle dir: {e}"))?;
        // A user namespace's root must be able to walk into the bundle.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod the bundle: {e}"))?;
        let r = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            fs::create_dir_all(r.join(d)).map_err(|e| format!("mkdir {d}: {e}"))?;
        }
        fs::copy("/usr/bin/busybox", r.join("bin/busybox"))
            .map_err(|e| format!("copy busybox: {e}"))?;
        for applet in ["sh", "cat", "ls", "test", "grep", "touch", "mkdir", "stat"] {
            symlink("busybox", r.join("bin").join(applet))
                .map_err(|e| format!("link {applet}: {e}"))?;
        }
        // The hostile links: an absolute one to the host's /etc and a
        // relative one that climbs out.
        symlink("/etc", r.join("evil")).map_err(|e| format!("link evil: {e}"))?;
        symlink("../../..", r.join("up")).map_err(|e| format!("link up: {e}"))?;
        let share = dir.path().join("share");
        fs::create_dir_all(share.join("sub")).map_err(|e| format!("mkdir share/sub: {e}"))?;
        fs::write(share.join("hello"), b"hello from the host\n")
            .map_err(|e| format!("write hello: {e}"))?;
        fs::write(dir.path().join("host-file"), b"a single file\n")
            .map_err(|e| format!("write host-file: {e}"))?;
        for d in ["merged", "upper", "work"] {
            fs::create_dir(dir.path().join(d)).map_err(|e| format!("mkdir {d}: {e}"))?;
        }
        Ok(Self {
            dir,
            escape_name: unique("escape"),
        })
    }

    /// The image's files (the overlay's lower layer when there is one).
    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Where the container's root is: the image dir itself, or an overlay
    /// of it mounted (in the child's namespace) at `merged`, as berth's
    /// snapshotter gives it.
    fn root_for(&self, overlay: bool) -> PathBuf {
        if overlay {
            self.dir.path().join("merged")
        } else {
            self.rootfs()
        }
    }

    /// What the host would have mounted before the runtime runs: a tmpfs
    /// below the bind source `share` (to see which options reach submounts)
    /// and, for overlay cases, the container's root. Never in the test's own
    /// namespace: either in the shared-namespace supervisor, which plays the
    /// host, or in the container child after making its mounts slaves.
    fn host_side_mounts(&self, case: &Case, in_child: bool) -> Result<(), String> {
        use nix::mount::{mount, MsFlags};
        if in_child {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| format!("make / rslave in the child: {e}"))?;
        }
        if case.overlay {
            self.mount_overlay()?;
        }
        mount(
            Some("tmpfs"),
            &self.dir.path().join("share/sub"),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .map_err(|e| format!("mount a tmpfs on share/sub: {e}"))
    }

    /// Mounts the overlay at `merged` (see `host_side_mounts` for where).
    fn mount_overlay(&self) -> Result<(), String> {
        let b = self.dir.path();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.rootfs().display(),
            b.join("upper").display(),
            b.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &b.join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| format!("mount the overlay: {e}"))
    }
}

fn mount_entry(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("a valid mount")
}

/// The default spec (runc's default mounts, masked and read-only paths, a
/// read-only root) plus mounts aimed through the hostile symlinks.
fn spec_for(fx: &Fixture, case: &Case) -> Spec {
    let mut spec = Spec::default();
    let mut root = spec.root().clone().expect("default root");
    root.set_path(fx.root_for(case.overlay));
    spec.set_root(Some(root));
    let mut process = spec.process().clone().expect("default process");
    process.set_cwd(PathBuf::from("/work/dir"));
    spec.set_process(Some(process));
    let mut mounts = spec.mounts().clone().expect("default mounts");
    if case.dev_readonly {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev"))
        {
            let mut options = m.options().clone().unwrap_or_default();
            options.push("ro".into());
            m.set_options(Some(options));
        }
    }
    mounts.push(mount_entry(
        &format!("/evil/{}", fx.escape_name),
        "tmpfs",
        "tmpfs",
        &["nosuid", "mode=700"],
    ));
    mounts.push(mount_entry(
        "/up/data",
        "bind",
        &fx.dir.path().join("share").to_string_lossy(),
        &["rbind", "ro", "nosuid", "nodev", "rprivate"],
    ));
    mounts.push(mount_entry(
        "/etc/single",
        "bind",
        "host-file",
        &["bind", "ro"],
    ));
    spec.set_mounts(Some(mounts));
    let mut linux = spec.linux().clone().expect("default linux");
    let ns = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| case.keep_ns.contains(&n.typ()))
        .collect::<Vec<_>>();
    linux.set_namespaces(Some(ns));
    linux.set_rootfs_propagation(case.propagation.map(str::to_owned));
    linux.set_devices(Some(vec![
        LinuxDeviceBuilder::default()
            .path("/dev/net/tun")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(200)
            .file_mode(0o600u32)
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .expect("a valid device"),
        LinuxDeviceBuilder::default()
            .path("/dev/berth-fifo")
            .typ(LinuxDeviceType::P)
            .file_mode(0o640u32)
            .build()
            .expect("a valid device"),
    ]));
    spec.set_linux(Some(linux));
    spec
}

/// The hierarchies this process is in, as the cgroups module would hand
/// them over: controllers from /proc/self/cgroup, the host dir under the
/// hierarchy's mount point.
fn own_cgroups() -> Result<Vec<CgroupHierarchy>, String> {
    let text = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("read /proc/self/cgroup: {e}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let dir = match controllers {
            "" => "unified",
            c => c.strip_prefix("name=").unwrap_or(c),
        };
        let host_dir = Path::new("/sys/fs/cgroup")
            .join(dir)
            .join(path.trim_start_matches('/'));
        if host_dir.is_dir() {
            out.push(CgroupHierarchy {
                controllers: controllers.to_owned(),
                host_dir,
            });
        }
    }
    Ok(out)
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

/// (mount point, fs type) pairs of this process's mount table.
fn mounts_here() -> Result<Vec<(String, String)>, String> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read mountinfo: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            Some((f.get(4)?.to_string(), f.get(dash + 1)?.to_string()))
        })
        .collect())
}

fn expect_erofs(result: std::io::Result<impl Sized>, what: &str) -> Result<(), String> {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        Err(e) => Err(format!("{what}: expected EROFS, got {e}")),
        Ok(_) => Err(format!("{what}: expected EROFS, but it succeeded")),
    }
}

/// What a user of the container sees, checked from inside after `finish`.
fn look_inside(fx: &Fixture, case: &Case) -> Result<(), String> {
    let userns = case.userns;
    let cgroupns = case.keep_ns.contains(&LinuxNamespaceType::Cgroup);
    if std::env::var_os("BERTH_ROOTFS_DUMP").is_some() {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        eprintln!("mount table inside:\n{text}");
    }
    let table = mounts_here()?;
    let has = |mp: &str, fs: &str| table.iter().any(|(m, t)| m == mp && t == fs);
    check(has("/proc", "proc"), "proc is mounted at /proc")?;
    check(has("/dev", "tmpfs"), "a tmpfs is mounted at /dev")?;
    check(has("/dev/pts", "devpts"), "devpts is mounted at /dev/pts")?;
    check(has("/dev/shm", "tmpfs"), "a tmpfs is mounted at /dev/shm")?;
    check(
        has("/dev/mqueue", "mqueue"),
        "mqueue is mounted at /dev/mqueue",
    )?;
    check(
        has("/sys", "sysfs") || (userns && table.iter().any(|(m, _)| m == "/sys")),
        "sysfs (or, in a user namespace, the host's /sys) is at /sys",
    )?;
    let bundle = fx.dir.path().to_string_lossy().into_owned();
    let outside: Vec<_> = table
        .iter()
        .filter(|(m, _)| m.starts_with(&bundle))
        .collect();
    check(
        outside.is_empty(),
        &format!("no mount point names the host's bundle path: {outside:?}"),
    )?;

    let null = fs::metadata("/dev/null").map_err(|e| format!("stat /dev/null: {e}"))?;
    check(
        null.file_type().is_char_device(),
        "/dev/null is a character device",
    )?;
    check(
        nix::sys::stat::major(null.rdev()) == 1 && nix::sys::stat::minor(null.rdev()) == 3,
        "/dev/null is 1:3",
    )?;
    for name in ["zero", "full", "random", "urandom", "tty"] {
        let m =
            fs::metadata(format!("/dev/{name}")).map_err(|e| format!("stat /dev/{name}: {e}"))?;
        check(
            m.file_type().is_char_device(),
            &format!("/dev/{name} is a character device"),
        )?;
        if !userns {
            check(
                m.mode() & 0o777 == 0o666,
                &format!("/dev/{name} has mode 0666"),
            )?;
        }
    }
    let tun = fs::metadata("/dev/net/tun").map_err(|e| format!("stat /dev/net/tun: {e}"))?;
    check(
        tun.file_type().is_char_device() && tun.rdev() == nix::sys::stat::makedev(10, 200),
        "linux.devices' /dev/net/tun is the character device 10:200",
    )?;
    if !userns {
        check(
            tun.mode() & 0o777 == 0o600 && tun.uid() == 1000 && tun.gid() == 1000,
            "/dev/net/tun has the spec's mode and owner",
        )?;
    }
    let fifo = fs::metadata("/dev/berth-fifo").map_err(|e| format!("stat /dev/berth-fifo: {e}"))?;
    check(
        fifo.file_type().is_fifo() && fifo.mode() & 0o777 == 0o640,
        "linux.devices' FIFO is made with its mode, also in a user namespace",
    )?;
    if case.console != ConsoleAt::Never {
        let console =
            fs::metadata("/dev/console").map_err(|e| format!("stat /dev/console: {e}"))?;
        check(
            console.file_type().is_char_device()
                && (136..=143).contains(&nix::sys::stat::major(console.rdev())),
            "/dev/console is the bound pty slave",
        )?;
    }
    if case.overlay {
        check(
            table.iter().any(|(m, t)| m == "/" && t == "overlay"),
            "the overlay is the container's / (no self-bind on top of it)",
        )?;
    }
    let ptmx = fs::read_link("/dev/ptmx").map_err(|e| format!("readlink /dev/ptmx: {e}"))?;
    check(ptmx == Path::new("pts/ptmx"), "/dev/ptmx links to pts/ptmx")?;
    let fd = fs::read_link("/dev/fd").map_err(|e| format!("readlink /dev/fd: {e}"))?;
    check(
        fd == Path::new("/proc/self/fd"),
        "/dev/fd links to /proc/self/fd",
    )?;

    // Masked: files become /dev/null (this kernel has no /proc/kcore, so
    // /proc/timer_list, which has content, is the witness); a directory
    // (/proc/acpi) lists empty.
    for masked in ["/proc/timer_list", "/proc/keys"] {
        let m = fs::metadata(masked).map_err(|e| format!("stat the masked {masked}: {e}"))?;
        check(
            m.file_type().is_char_device() && m.rdev() == null.rdev(),
            &format!("the masked {masked} is /dev/null"),
        )?;
        let mut content = Vec::new();
        fs::File::open(masked)
            .and_then(|mut f| f.read_to_end(&mut content))
            .map_err(|e| format!("read the masked {masked}: {e}"))?;
        check(
            content.is_empty(),
            &format!("the masked {masked} reads empty"),
        )?;
    }
    if Path::new("/proc/acpi").exists() {
        let n = fs::read_dir("/proc/acpi")
            .map_err(|e| format!("list /proc/acpi: {e}"))?
            .count();
        check(n == 0, "the masked /proc/acpi is empty")?;
    }
    // Read-only: /proc/sys refuses writes.
    expect_erofs(
        fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/kernel/hostname"),
        "open /proc/sys/kernel/hostname for writing",
    )?;
    check(
        Path::new("/work/dir").is_dir(),
        "the missing process.cwd was created",
    )?;
    // Read-only root.
    expect_erofs(
        fs::write("/should-not-exist", b"x"),
        "create a file in the read-only /",
    )?;
    // /dev/shm stays writable (only the root, or /dev, is read-only).
    fs::write("/dev/shm/ok", b"x").map_err(|e| format!("write to /dev/shm: {e}"))?;
    if case.dev_readonly {
        expect_erofs(
            fs::write("/dev/new", b"x"),
            "create a file in the read-only /dev",
        )?;
    } else {
        fs::write("/dev/new", b"x").map_err(|e| format!("write to /dev: {e}"))?;
    }

    // The hostile destinations landed inside: /evil -> /etc became the
    // container's /etc, /up -> ../../.. became the container's /.
    check(
        has(&format!("/etc/{}", fx.escape_name), "tmpfs"),
        "the tmpfs aimed through evil -> /etc is mounted at the container's /etc",
    )?;
    let hello = fs::read_to_string("/data/hello").map_err(|e| format!("read /data/hello: {e}"))?;
    check(
        hello == "hello from the host\n",
        "the bind through up -> ../../.. shows the host dir at /data",
    )?;
    expect_erofs(
        fs::write("/data/new", b"x"),
        "write into the read-only bind /data",
    )?;
    let single = fs::read_to_string("/etc/single").map_err(|e| format!("read /etc/single: {e}"))?;
    check(
        single == "a single file\n",
        "a relative file bind source is taken from the bundle",
    )?;

    // cgroups: one directory per hierarchy, read-only.
    let memory = Path::new("/sys/fs/cgroup/memory");
    check(memory.is_dir(), "/sys/fs/cgroup/memory exists")?;
    check(
        memory.join("memory.limit_in_bytes").exists(),
        "/sys/fs/cgroup/memory shows the memory controller's files",
    )?;
    if cgroupns {
        check(
            has("/sys/fs/cgroup/memory", "cgroup"),
            "a cgroup fs is mounted for memory",
        )?;
    }
    expect_erofs(
        fs::create_dir(memory.join(unique("child"))),
        "mkdir in the read-only cgroup mount",
    )?;
    check(
        Path::new("/sys/fs/cgroup/systemd").is_dir(),
        "the name=systemd hierarchy is at /sys/fs/cgroup/systemd",
    )?;

    // And a program runs in there.
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", "test -c /dev/null && grep -q ' /proc ' /proc/self/mountinfo && cat /data/hello >/dev/null"])
        .status()
        .map_err(|e| format!("run busybox sh in the container: {e}"))?;
    check(status.success(), "busybox sh's checks pass inside")?;
    Ok(())
}

struct Case {
    name: &'static str,
    flags: CloneFlags,
    keep_ns: &'static [LinuxNamespaceType],
    userns: bool,
    no_pivot: bool,
    /// The root is an overlay already mounted (so needs no self-bind).
    overlay: bool,
    /// When to bind a pty slave onto /dev/console.
    console: ConsoleAt,
    /// Mount /dev read-only (devices are made first, `finish` remounts).
    dev_readonly: bool,
    /// `linux.rootfsPropagation`.
    propagation: Option<&'static str>,
    /// Run below a namespace whose mounts are shared (as systemd makes them).
    shared_host: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConsoleAt {
    Never,
    /// With the rootfs path, between `prepare` and `pivot`.
    AfterPrepare,
    /// With `/`, after `finish` (so on a possibly read-only /dev).
    AfterFinish,
}

/// In the child: set the root up and look at it. Never returns.
fn child(
    fx: &Fixture,
    case: &Case,
    spec: &Spec,
    opts: &RootfsOptions,
    go: std::os::fd::OwnedFd,
) -> ! {
    // A hang must end the child, not the test run.
    alarm::set(60);
    if case.userns {
        // Wait until the parent has written our ID maps.
        let mut b = [0u8; 1];
        let _ = read(&go, &mut b);
    }
    drop(go);
    let root = fx.root_for(case.overlay);
    let host_side = if case.shared_host {
        Ok(())
    } else {
        fx.host_side_mounts(case, true)
    };
    let result = host_side
        .and_then(|()| rootfs::prepare(spec, &root, opts).map_err(|e| format!("prepare: {e}")))
        .and_then(|()| console(case, ConsoleAt::AfterPrepare, &root))
        .and_then(|()| rootfs::pivot(&root, case.no_pivot).map_err(|e| format!("pivot: {e}")))
        .and_then(|()| rootfs::finish(spec).map_err(|e| format!("finish: {e}")))
        .and_then(|()| console(case, ConsoleAt::AfterFinish, Path::new("/")))
        .and_then(|()| look_inside(fx, case));
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("    in the container: {e}");
            std::process::exit(1)
        }
    }
}

/// A pty from the host's devpts, its slave bound on the container's
/// /dev/console as the runtime does for `process.terminal`.
fn console(case: &Case, now: ConsoleAt, root: &Path) -> Result<(), String> {
    if case.console != now {
        return Ok(());
    }
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(|e| format!("open a pty: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let slave = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    rootfs::bind_console(root, Path::new(&slave)).map_err(|e| format!("bind_console: {e}"))?;
    // The master stays open until the child exits.
    std::mem::forget(master);
    Ok(())
}

/// In a user namespace the child waits for its ID maps: write them, then
/// let it go. An identity map keeps root root, but the kernel applies every
/// user-namespace rule (no mknod, locked mounts, sysfs needs a netns).
fn release(case: &Case, pid: nix::unistd::Pid, go: std::os::fd::OwnedFd) -> Result<(), String> {
    if !case.userns {
        return Ok(());
    }
    for file in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{pid}/{file}"), "0 0 65536\n")
            .map_err(|e| format!("write {file} of {pid}: {e}"))?;
    }
    write(&go, b"g").map_err(|e| format!("release the child: {e}"))?;
    Ok(())
}

fn run_case(case: &Case) -> Result<(), String> {
    let fx = Fixture::new(case.name)?;
    let spec = spec_for(&fx, case);
    rootfs::validate(&spec, fx.dir.path()).map_err(|e| format!("validate: {e}"))?;
    let opts = RootfsOptions {
        no_pivot: case.no_pivot,
        in_user_namespace: case.userns,
        console: case.console != ConsoleAt::Never,
        cgroup_paths: own_cgroups()?,
        bundle: fx.dir.path().to_path_buf(),
        mount_label: None,
        idmapped: Default::default(),
    };
    if !case.shared_host {
        return supervise(&fx, case, &spec, &opts);
    }
    // Run the case below a mount namespace whose mounts are all shared, as
    // on a systemd host: without prepare's slave step the container's
    // mounts would propagate up into it, and `supervise` would see them.
    match clone_fork(CloneFlags::CLONE_NEWNS).map_err(|e| format!("clone_fork: {e}"))? {
        Forked::Child(_) => {
            alarm::set(120);
            let r = nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_SHARED | nix::mount::MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| format!("make / rshared: {e}"))
            .and_then(|()| fx.host_side_mounts(case, false))
            .and_then(|()| supervise(&fx, case, &spec, &opts));
            if let Err(e) = &r {
                eprintln!("    in the shared namespace: {e}");
            }
            std::process::exit(i32::from(r.is_err()))
        }
        Forked::Parent(pid) => match wait_for(pid)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            other => Err(format!(
                "the shared-namespace supervisor ended with {other:?}"
            )),
        },
    }
}

fn wait_for(pid: nix::unistd::Pid) -> Result<WaitStatus, String> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(|e| format!("waitpid: {e}")),
        }
    }
}

/// Forks the case's container child, releases it, waits for it, and checks
/// that the mount table it runs below gained nothing.
fn supervise(fx: &Fixture, case: &Case, spec: &Spec, opts: &RootfsOptions) -> Result<(), String> {
    let host_before = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let (go_read, go_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let pid =
        match clone_fork(case.flags).map_err(|e| format!("clone_fork({:?}): {e}", case.flags))? {
            Forked::Child(_) => {
                drop(go_write);
                child(fx, case, spec, opts, go_read)
            }
            Forked::Parent(pid) => pid,
        };
    drop(go_read);
    // Whatever fails here, the child is waited for before the fixture (its
    // rootfs) is removed.
    let released = release(case, pid, go_write);
    let status = wait_for(pid)?;
    released?;

    // Whatever happened inside, the host must not have changed.
    let host_after = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let bundle = fx.dir.path().to_string_lossy().into_owned();
    let leaked: Vec<&str> = host_after
        .lines()
        .filter(|l| !host_before.contains(*l))
        .filter(|l| l.contains(&bundle) || l.contains(&fx.escape_name))
        .collect();
    check(
        leaked.is_empty(),
        &format!("host mount table unchanged, but it gained {leaked:?}"),
    )?;
    check(
        !Path::new("/etc").join(&fx.escape_name).exists(),
        "nothing was created in the host's /etc",
    )?;
    check(
        !Path::new("/data").exists() || !Path::new("/data/hello").exists(),
        "nothing was mounted at the host's /data",
    )?;
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(format!("the container child ended with {other:?}")),
    }
}

/// A destination that reaches the container's /proc through a symlink
/// (`/sneaky -> /proc/self`, then `/sneaky/attr`) must be refused like one
/// written under /proc (CVE-2019-16884), and nothing may be mounted.
fn hostile_proc_destination() -> Result<(), String> {
    let fx = Fixture::new("hostile-proc")?;
    symlink("/proc/self", fx.rootfs().join("sneaky")).map_err(|e| format!("link sneaky: {e}"))?;
    let mut spec = Spec::default();
    let mut root = spec.root().clone().expect("default root");
    root.set_path(fx.rootfs());
    spec.set_root(Some(root));
    spec.set_mounts(Some(vec![
        mount_entry("/proc", "proc", "proc", &[]),
        mount_entry("/sneaky/attr", "tmpfs", "tmpfs", &[]),
    ]));
    rootfs::validate(&spec, fx.dir.path())
        .map_err(|e| format!("validate (lexically fine): {e}"))?;
    let opts = RootfsOptions {
        bundle: fx.dir.path().to_path_buf(),
        ..RootfsOptions::default()
    };
    let pid = match clone_fork(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
        .map_err(|e| format!("clone_fork: {e}"))?
    {
        Forked::Child(_) => {
            alarm::set(60);
            let code = match rootfs::prepare(&spec, &fx.rootfs(), &opts) {
                Err(e) if e.to_string().contains("resolves into /proc") => 0,
                Err(e) => {
                    eprintln!("    in the container: prepare failed otherwise: {e}");
                    1
                }
                Ok(()) => {
                    eprintln!("    in the container: prepare mounted through /sneaky into /proc");
                    1
                }
            };
            std::process::exit(code)
        }
        Forked::Parent(pid) => pid,
    };
    let status = loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(|e| format!("waitpid: {e}"))?,
        }
    };
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(format!("the container child ended with {other:?}")),
    }
}

fn main() -> ExitCode {
    if !Uid::effective().is_root() {
        println!("rootfs integration tests SKIPPED: they need root (mount namespaces, pivot_root); run `cargo test -p runtime --test rootfs` as root");
        return ExitCode::SUCCESS;
    }
    if !Path::new("/usr/bin/busybox").exists() {
        println!("rootfs integration tests SKIPPED: /usr/bin/busybox is missing (apt-get install busybox-static)");
        return ExitCode::SUCCESS;
    }
    use LinuxNamespaceType::*;
    let cases = [
        Case {
            name: "default-spec-cgroupns-pivot",
            flags: CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWCGROUP,
            keep_ns: &[Pid, Mount, Cgroup],
            userns: false,
            no_pivot: false,
            overlay: true,
            console: ConsoleAt::AfterPrepare,
            dev_readonly: false,
            propagation: None,
            shared_host: true,
        },
        Case {
            name: "cgroup-binds-no-pivot",
            flags: CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
            keep_ns: &[Pid, Mount],
            userns: false,
            no_pivot: true,
            overlay: false,
            console: ConsoleAt::AfterFinish,
            dev_readonly: true,
            propagation: Some("rprivate"),
            shared_host: false,
        },
        Case {
            name: "user-namespace",
            flags: CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWIPC,
            keep_ns: &[Pid, Mount, Ipc, User],
            userns: true,
            no_pivot: false,
            overlay: false,
            console: ConsoleAt::AfterFinish,
            dev_readonly: false,
            propagation: Some("rslave"),
            shared_host: true,
        },
    ];
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut failed = 0;
    for case in cases
        .iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
    {
        match run_case(case) {
            Ok(()) => println!("test rootfs::{} ... ok", case.name),
            Err(e) => {
                println!("test rootfs::{} ... FAILED: {e}", case.name);
                failed += 1;
            }
        }
    }
    if filter
        .as_deref()
        .is_none_or(|f| "hostile-proc-destination".contains(f))
    {
        match hostile_proc_destination() {
            Ok(()) => println!("test rootfs::hostile-proc-destination ... ok"),
            Err(e) => {
                println!("test rootfs::hostile-proc-destination ... FAILED: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
