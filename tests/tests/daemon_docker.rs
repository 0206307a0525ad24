//! berthd driven by the real docker CLI: a private berthd per test (its own data root, exec
//! root, socket and cgroup parent, all in a sandbox), the docker CLI pointed at it with
//! DOCKER_HOST, and the output and exit codes a user would see. At the end: no mount under the
//! sandbox, no cgroup under its parent, no monitor left; the sandbox's teardown (also on
//! failure) kills berthd, the monitors and the containers, unmounts and removes everything.
//!
//! Needs root, the docker CLI, Debian's busybox-static, runc and tini (for --add-runtime and
//! --init), and the binaries built first:
//! `cargo build -p berthd -p berth-monitor`.

mod compat_common;

use std::process::{Command, Output};

use compat_common::berthd::{berthd_with_busybox, stderr, stdout, Berthd, T};
use compat_common::registry::LocalRegistry;
use compat_common::{require_root, require_tool, run};

#[test]
fn docker_cli_runs_containers_through_berthd() {
    let mut d = berthd_with_busybox("daemon-cli");

    let version = d.ok(&["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    assert!(
        version.trim().ends_with("linux"),
        "docker version: {version}"
    );
    let info = d.ok(&[
        "info",
        "--format",
        "{{.Images}} {{.Driver}} {{.LoggingDriver}}",
    ]);
    assert_eq!(info.trim(), "1 overlay2 json-file");
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "busybox:latest");

    // Foreground runs: output, exit codes, docker's message for a missing program.
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("hello\n", Some(0)),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stderr(&out), "to-err\n");
    let out = d.docker(&["run", "--name", "missing", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "stderr: {}",
        stderr(&out)
    );
    d.ok(&["rm", "missing"]);

    // Piped stdin with -i.
    let out = d.docker_with_input(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"],
        Some("piped text\n"),
    );
    assert_eq!(stdout(&out), "PIPED TEXT\n", "stderr: {}", stderr(&out));

    // Container settings seen from inside.
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "boxy",
        "busybox",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out, "1 /tmp 1000:1000 boxy\n");
    let caps = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapBnd",
        "/proc/self/status",
    ]);
    assert_eq!(
        caps.split_whitespace().nth(1),
        Some("00000000a80425fb"),
        "docker's default capability set: {caps}"
    );
    let out = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "--read-only let a write through"
    );

    // A detached container: ps, logs, exec, inspect, stop, rm.
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo started; while true; do sleep 1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "docker run -d prints the ID: {id}");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "docker ps: {ps}");
    assert_eq!(d.ok(&["exec", "web", "echo", "hi"]), "hi\n");
    let out = d.docker(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(d.ok(&["logs", "web"]), "started\n");
    let state = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Name}} {{.Config.Hostname}} {{.GraphDriver.Name}}",
        "web",
    ]);
    assert_eq!(state.trim(), format!("running /web {} overlay2", &id[..12]));
    let out = d.docker(&["rm", "web"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rm of a running container must fail"
    );
    assert!(
        stderr(&out).contains("container is running"),
        "stderr: {}",
        stderr(&out)
    );

    // berthd dies; the container does not; a new berthd finds it.
    d.kill9();

    d.spawn();
    let state = d.ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(state.trim(), "running");
    assert_eq!(d.ok(&["logs", "web"]), "started\n");
    assert_eq!(d.ok(&["exec", "web", "echo", "still"]), "still\n");
    // Its shell exits 0 on SIGTERM.
    d.ok(&["stop", "web"]);
    let state = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state.trim(), "exited 0");
    d.ok(&["rm", "web"]);
    let out = d.docker(&["inspect", "web"]);
    assert_eq!(out.status.code(), Some(1));

    // Stop falls back to SIGKILL after the timeout (a shell ignoring SIGTERM).
    d.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 1; done",
    ]);
    d.ok(&["stop", "-t", "1", "stubborn"]);
    let state = d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "stubborn"]);
    assert_eq!(state.trim(), "137");
    d.ok(&["rm", "stubborn"]);

    // rmi.
    let out = d.ok(&["rmi", "busybox"]);
    assert!(
        out.contains("Untagged: busybox:latest"),
        "docker rmi: {out}"
    );
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    d.finish();
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let d = berthd_with_busybox("daemon-bad");
    let out = d.docker(&["run", "--rm", "busybox:nosuchtag", "true"]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    let out = d.docker(&["run", "--rm", "--name", "bad name", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("Invalid container name"),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    let missing = d.sandbox.root.join("no-such-source");
    let mount = format!("type=bind,src={},dst=/x", missing.display());
    let out = d.docker(&["run", "--rm", "--mount", &mount, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("bind source path does not exist"),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker(&["rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker(&["run", "--rm", "--stop-signal", "NOSUCH", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    let ps = d.ok(&["ps", "-a", "-q"]);
    assert!(ps.trim().is_empty(), "half-made containers: {ps}");
    d.ok(&["create", "--name", "taken", "busybox", "true"]);
    let out = d.docker(&["create", "--name", "taken", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("is already in use"),
        "stderr: {}",
        stderr(&out)
    );
    d.ok(&["rm", "taken"]);
    d.finish();
}

#[test]
fn lifecycle_logs_and_listing() {
    let d = berthd_with_busybox("daemon-life");

    // create, then start -a: output and exit code come through the start.
    let id = d.ok(&[
        "create",
        "--name",
        "made",
        "-l",
        "team=blue",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "status=created",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps.trim(), "made");
    let out = d.docker(&["start", "-a", "made"]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "err\n")
    );
    let ps = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "label=team=blue",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(ps.starts_with("made Exited (7)"), "docker ps: {ps}");
    let ps = d.ok(&["ps", "-a", "-q", "--filter", "exited=7"]);
    assert_eq!(ps.trim(), &id.trim()[..12]);
    let logs = d.docker(&["logs", "made"]);
    assert_eq!(
        (stdout(&logs).as_str(), stderr(&logs).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(d.ok(&["logs", "--since", "0", "made"]), "out\n");
    assert_eq!(d.ok(&["logs", "--since", &unix_now(), "made"]), "");
    let logs = d.ok(&["logs", "-t", "made"]);
    assert!(
        logs.contains("T") && logs.trim_end().ends_with(" out"),
        "docker logs -t: {logs}"
    );

    // A terminal: one stream, CR LF line ends as a tty makes them.
    let out = d.ok(&[
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "test -t 1 && echo tty",
    ]);
    assert_eq!(out, "tty\r\n");

    // logs --tail and rotation with --log-opt.
    d.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done",
    ]);
    let tail = d.ok(&["logs", "--tail", "2", "chatty"]);
    assert_eq!(tail, "line 98\nline 99\n");
    let all = d.ok(&["logs", "chatty"]);
    assert!(!all.contains("line 0\n"), "rotation kept everything");
    assert!(all.lines().count() < 100 && all.ends_with("line 99\n"));

    // rename, kill -s, wait, restart.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' USR1; while true; do sleep 1; done",
    ]);
    d.ok(&["rename", "sleeper", "dozer"]);
    d.ok(&["kill", "-s", "USR1", "dozer"]);
    assert_eq!(d.ok(&["wait", "dozer"]).trim(), "9");
    d.ok(&["restart", "-t", "1", "dozer"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Running}}", "dozer"])
            .trim(),
        "true"
    );
    d.ok(&["rm", "-f", "dozer"]);

    // Events of a run, read back with --since/--until.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        + 1;
    let until = until.to_string();
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=made",
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        events.contains("create") && events.contains("start") && events.contains("die"),
        "events: {events}"
    );

    d.ok(&["rm", "made", "chatty"]);
    d.finish();
}

#[test]
fn concurrent_runs_all_succeed_and_leave_nothing() {
    let d = berthd_with_busybox("daemon-many");
    const N: usize = 50;
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let d = &d;
                s.spawn(move || d.docker(&["run", "--rm", "busybox", "echo", &format!("n{i}")]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a docker thread"))
            .collect()
    });
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(
            stdout(out),
            format!("n{i}\n"),
            "run {i}: stderr: {}",
            stderr(out)
        );
        assert_eq!(out.status.code(), Some(0));
    }
    assert!(
        d.ok(&["ps", "-a", "-q"]).trim().is_empty(),
        "--rm left containers"
    );
    d.finish();
}

#[test]
fn pause_stats_top_and_exec_with_a_terminal() {
    let d = berthd_with_busybox("daemon-live");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "1000",
    ]);

    let top = d.ok(&["top", "live"]);
    assert!(
        top.contains("sleep 1000") && top.starts_with("UID"),
        "docker top: {top}"
    );

    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "live",
    ]);
    assert!(
        stats.starts_with("live ") && stats.contains("/ 64MiB") && stats.trim().ends_with(" 1"),
        "docker stats: {stats}"
    );

    d.ok(&["pause", "live"]);
    let state = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}}",
        "live",
    ]);
    assert_eq!(state.trim(), "paused true");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(Paused)"), "docker ps: {ps}");
    d.ok(&["unpause", "live"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "live"])
            .trim(),
        "running"
    );

    let out = d.ok(&["exec", "-t", "live", "sh", "-c", "test -t 0 && echo tty"]);
    assert_eq!(out, "tty\r\n");
    let out = d.ok(&[
        "exec",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "-e",
        "E=1",
        "live",
        "sh",
        "-c",
        "echo $(id -u) $(pwd) $E",
    ]);
    assert_eq!(out, "1000 /tmp 1\n");
    d.ok(&["exec", "-d", "live", "sh", "-c", "echo detached > /tmp/d"]);
    let out = d.docker(&["exec", "live", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker_with_input(&["exec", "-i", "live", "cat"], Some("through exec\n"));
    assert_eq!(stdout(&out), "through exec\n", "stderr: {}", stderr(&out));

    d.ok(&["rm", "-f", "live"]);
    d.finish();
}

#[test]
fn restart_policies() {
    let mut d = berthd_with_busybox("daemon-restart");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    // No event to wait on from outside but the daemon's own state: probe it, bounded.
    let state = compat_common::wait_until("two restarts of flaky", T, || {
        let s = d.ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
            "flaky",
        ]);
        (s.trim() == "2 exited 1").then_some(s)
    });
    assert_eq!(state.trim(), "2 exited 1");

    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.ok(&["stop", "-t", "1", "always"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "always"])
            .trim(),
        "exited"
    );
    // A new berthd starts `always` containers again, even one stopped by hand (dockerd's rule).
    d.kill9();
    d.spawn();
    compat_common::wait_until("always to run again", T, || {
        let s = d.ok(&["inspect", "--format", "{{.State.Status}}", "always"]);
        (s.trim() == "running").then_some(())
    });
    let out = d.docker(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "--rm with a restart policy must be refused"
    );
    d.ok(&["rm", "-f", "always", "flaky"]);
    d.finish();
}

#[test]
fn run_flags_reach_the_container() {
    // --init runs the static reaper berthd finds (Debian's tini package).
    require_tool("tini-static", "tini");
    let d = berthd_with_busybox("daemon-flags");
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        d.ok(&a)
    };
    let bnd = |out: String| {
        out.split_whitespace()
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(
        bnd(run(&[
            "--cap-drop",
            "ALL",
            "busybox",
            "grep",
            "CapBnd",
            "/proc/self/status"
        ])),
        "0000000000000000"
    );
    assert_eq!(
        bnd(run(&[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "KILL",
            "busybox",
            "grep",
            "CapBnd",
            "/proc/self/status"
        ])),
        "0000000000000020"
    );
    let privileged = bnd(run(&[
        "--privileged",
        "busybox",
        "grep",
        "CapBnd",
        "/proc/self/status",
    ]));
    let ours = std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .expect("CapBnd");
    assert_eq!(
        privileged, ours,
        "--privileged gets the host's whole bounding set"
    );
    // Masked paths: /proc/timer_list is hidden unless privileged.
    assert_eq!(
        run(&["busybox", "sh", "-c", "wc -c < /proc/timer_list"]).trim(),
        "0"
    );
    assert_eq!(
        run(&[
            "--ulimit",
            "nofile=100:200",
            "busybox",
            "sh",
            "-c",
            "ulimit -n"
        ])
        .trim(),
        "100"
    );
    let mounts = run(&[
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "grep",
        " /scratch ",
        "/proc/mounts",
    ]);
    assert!(
        mounts.starts_with("tmpfs /scratch tmpfs") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    assert_eq!(
        run(&["--network", "none", "busybox", "ls", "/sys/class/net"]).trim(),
        "lo"
    );
    // The default network: eth0 on the daemon's bridge beside loopback.
    assert_eq!(run(&["busybox", "ls", "/sys/class/net"]).trim(), "eth0\nlo");
    // Loopback is up in the container's own network namespace (IFF_UP | IFF_LOOPBACK).
    assert_eq!(
        run(&["busybox", "cat", "/sys/class/net/lo/flags"]).trim(),
        "0x9"
    );
    let ping = run(&["busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"]);
    assert!(ping.contains("1 packets received"), "ping over lo: {ping}");
    let host = compat_common::host_hostname();
    assert_eq!(
        run(&["--network", "host", "busybox", "hostname"]).trim(),
        host
    );
    assert_eq!(
        run(&[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ip_forward"
        ])
        .trim(),
        "1"
    );
    let dev = run(&[
        "--device",
        "/dev/null:/dev/mynull:rw",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/mynull; echo x > /dev/mynull && echo written",
    ]);
    assert!(
        dev.starts_with("crw") && dev.contains("1,   3") && dev.ends_with("written\n"),
        "--device: {dev}"
    );
    let nnp = run(&[
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(nnp.split_whitespace().nth(1), Some("1"), "{nnp}");
    let env_file = d.sandbox.root.join("env.list");
    std::fs::write(&env_file, "FROM_FILE=yes\n").expect("write the env file");
    let env = run(&[
        "--env-file",
        env_file.to_str().expect("utf-8"),
        "busybox",
        "sh",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(env, "yes\n");
    // --init: a static reaper (tini-static here) is pid 1, the program its child.
    let init = run(&[
        "--init",
        "busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(
        init.starts_with("/sbin/docker-init -- sh"),
        "pid 1 with --init: {init}"
    );
    assert_eq!(
        run(&["--entrypoint", "echo", "busybox", "via", "entrypoint"]),
        "via entrypoint\n"
    );
    assert_eq!(
        run(&["--stop-signal", "USR1", "-l", "a=b", "busybox", "true"]),
        ""
    );

    // The OOM killer's work is recorded.
    let out = d.docker(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail",
    ]);
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
    let oom = d.ok(&[
        "inspect",
        "--format",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog",
    ]);
    assert_eq!(oom.trim(), "true 137");
    d.ok(&["rm", "hog"]);

    // Limits land in the container's cgroups.
    let id = d.ok(&[
        "run",
        "-d",
        "--cpuset-cpus",
        "0",
        "--memory",
        "32m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    let cg = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/{ctrl}/{}/{id}/{file}",
            d.sandbox.tag
        ))
        .unwrap_or_else(|e| panic!("read {ctrl}/{file} of {id}: {e}"))
        .trim()
        .to_string()
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("pids", "pids.max"), "20");
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    d.ok(&[
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "30",
        id,
    ]);
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (48u64 << 20).to_string()
    );
    assert_eq!(cg("pids", "pids.max"), "30");
    let mem = d.ok(&["inspect", "--format", "{{.HostConfig.Memory}}", id]);
    assert_eq!(mem.trim(), (48u64 << 20).to_string());
    // The monitor stays small: its resident set, as the kernel counts it.
    let monitors = d.monitors();
    assert_eq!(
        monitors.len(),
        1,
        "one monitor per running container: {monitors:?}"
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", monitors[0])).expect("monitor status");
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?");
    eprintln!("monitor {}", rss);
    d.ok(&["rm", "-f", id]);
    d.finish();
}

#[test]
fn images_follow_logs_attach_and_prune() {
    let d = berthd_with_busybox("daemon-images");
    d.ok(&["tag", "busybox", "mybox:1"]);
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = images.lines().collect();
    names.sort();
    assert_eq!(names, ["busybox:latest", "mybox:1"]);
    let id = d.ok(&["image", "inspect", "--format", "{{.Id}} {{.Os}}", "mybox:1"]);
    assert!(
        id.starts_with("sha256:") && id.trim().ends_with(" linux"),
        "image inspect: {id}"
    );
    let history = d.ok(&["history", "-q", "mybox:1"]);
    assert!(!history.trim().is_empty());
    let saved = d.sandbox.root.join("saved.tar");
    d.ok(&["save", "-o", saved.to_str().expect("utf-8"), "mybox:1"]);
    assert!(std::fs::metadata(&saved).expect("the saved archive").len() > 100_000);
    let out = d.ok(&["rmi", "mybox:1"]);
    assert_eq!(out.trim(), "Untagged: mybox:1");
    let loaded = d.ok(&["load", "-i", saved.to_str().expect("utf-8")]);
    assert!(loaded.contains("mybox:1"), "docker load: {loaded}");

    // logs -f follows until the container exits.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo a; read x < /dev/null; sleep 1; echo b",
    ]);
    assert_eq!(d.ok(&["logs", "-f", "talker"]), "a\nb\n");
    // attach to a running container sees its output to the end.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo from-late",
    ]);
    let out = d.docker(&["attach", "late"]);
    assert_eq!(stdout(&out), "from-late\n", "stderr: {}", stderr(&out));

    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(
        pruned.contains("Deleted Containers"),
        "container prune: {pruned}"
    );
    assert!(d.ok(&["ps", "-a", "-q"]).trim().is_empty());
    d.ok(&["rmi", "mybox:1"]);
    let pruned = d.docker(&["image", "prune", "-a", "-f"]);
    assert_eq!(pruned.status.code(), Some(0), "stderr: {}", stderr(&pruned));
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    d.finish();
}

#[test]
fn berthd_killed_amid_runs_loses_nothing() {
    let mut d = berthd_with_busybox("daemon-crash");
    const N: usize = 8;
    let socket = d.socket.clone();
    let config = d.docker_config.clone();
    let runs: Vec<std::thread::JoinHandle<Output>> = (0..N)
        .map(|i| {
            let (socket, config) = (socket.clone(), config.clone());
            std::thread::spawn(move || {
                let mut cmd = Command::new("docker");
                cmd.args([
                    "run",
                    "--rm",
                    "--name",
                    &format!("r{i}"),
                    "busybox",
                    "sh",
                    "-c",
                    "sleep 2; echo done",
                ])
                .env("DOCKER_HOST", format!("unix://{}", socket.display()))
                .env("DOCKER_CONFIG", &config);
                run(&mut cmd, T)
            })
        })
        .collect();
    compat_common::wait_until("some containers to run", T, || {
        (d.monitors().len() >= 3).then_some(())
    });
    d.kill9();
    d.spawn();
    for r in runs {
        // Clients cut off by the crash fail; that is theirs to retry. None may hang.
        let _ = r.join().expect("a docker thread");
    }
    // Every container either ran to its end and was removed (--rm), or is listed; none runs.
    compat_common::wait_until("no container to run any more", T, || {
        d.ok(&["ps", "-q"]).trim().is_empty().then_some(())
    });
    let left = d.ok(&["ps", "-a", "-q"]);
    for f in std::fs::read_dir(d.sandbox.root.join("data/containers"))
        .expect("containers dir")
        .flatten()
    {
        let state =
            std::fs::read_to_string(f.path().join("monitor-state.json")).unwrap_or_default();
        let rec = std::fs::read_to_string(f.path().join("config.v2.json")).unwrap_or_default();
        let status = rec
            .split("\"state\":")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(60)
            .collect::<String>();
        eprintln!("left: {:?} monitor {state} record {status}", f.file_name());
    }
    for id in left.split_whitespace() {
        d.ok(&["rm", "-f", id]);
    }
    d.finish();
}

#[test]
fn health_checks_report_status() {
    let d = berthd_with_busybox("daemon-health");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "1000",
    ]);
    let health = |d: &Berthd| {
        d.ok(&["inspect", "--format", "{{.State.Health.Status}}", "hc"])
            .trim()
            .to_string()
    };
    // Probed by berthd on its schedule; the test can only look at the state it records.
    compat_common::wait_until("hc to turn unhealthy", T, || {
        (health(&d) == "unhealthy").then_some(())
    });
    d.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    compat_common::wait_until("hc to turn healthy", T, || {
        (health(&d) == "healthy").then_some(())
    });
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(healthy)"), "docker ps: {ps}");
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &unix_now(),
        "--filter",
        "container=hc",
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        events.contains("health_status: unhealthy") && events.contains("health_status: healthy"),
        "events: {events}"
    );
    d.ok(&["rm", "-f", "hc"]);
    d.finish();
}

fn unix_now() -> String {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        + 1)
    .to_string()
}

#[test]
fn another_oci_runtime_runs_containers_with_add_runtime() {
    require_root("berthd");
    let runc = require_tool("runc", "runc");
    let mut d = berthd_with_busybox("daemon-runc");
    d.kill9();
    d.extra_args = vec!["--add-runtime".into(), format!("runc={}", runc.display())];
    d.spawn();
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo via-runc; exit 4",
    ]);
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("via-runc\n", Some(4)),
        "stderr: {}",
        stderr(&out)
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rc",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo up; while true; do sleep 1; done",
    ]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.Runtime}}", "rc"])
            .trim(),
        "runc"
    );
    assert_eq!(
        d.ok(&["exec", "rc", "echo", "exec-via-runc"]),
        "exec-via-runc\n"
    );
    assert!(d.ok(&["top", "rc"]).contains("sleep"));
    d.ok(&["stop", "rc"]);
    assert_eq!(d.ok(&["logs", "rc"]), "up\n");
    d.ok(&["rm", "rc"]);
    let out = d.docker(&["run", "--rm", "--runtime", "nosuch", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unknown or invalid runtime name: nosuch"),
        "stderr: {}",
        stderr(&out)
    );
    d.finish();
}

#[test]
fn push_and_pull_through_a_local_registry() {
    let d = berthd_with_busybox("dpush");
    let reg_dir = d.sandbox.dir("registry");
    let reg = LocalRegistry::start(&reg_dir, None);
    let name = format!("127.0.0.1:{}/bb:1", reg.port);

    d.ok(&["tag", "busybox:latest", &name]);
    let pushed = d.ok(&["push", &name]);
    assert!(
        pushed.contains("1: digest: sha256:"),
        "docker push said: {pushed}"
    );
    // Pushed a second time, every layer is already there.
    let again = d.ok(&["push", &name]);
    assert!(
        again.contains("Layer already exists"),
        "second push said: {again}"
    );

    d.ok(&["rmi", &name]);
    let pulled = d.ok(&["pull", &name]);
    assert!(
        pulled.contains("Status: Downloaded newer image for") && pulled.contains(&name),
        "docker pull said: {pulled}"
    );
    // The pull answered before its data was flushed to disk; berthd flushes
    // it right after, in the background, and removes the pull's marker.
    let pending = d.sandbox.dir("data").join("image").join("pending");
    berth_tests::wait::dir_empty(&pending, T).expect("berthd settles the pull");
    let up_to_date = d.ok(&["pull", &name]);
    assert!(
        up_to_date.contains("Image is up to date"),
        "second pull said: {up_to_date}"
    );
    let out = d.ok(&["run", "--rm", &name, "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
    let digests = d.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &name]);
    assert!(digests.contains("bb@sha256:"), "RepoDigests: {digests}");

    // A tag the registry does not have: exit 1 and the registry's reason.
    let missing = format!("127.0.0.1:{}/bb:nope", reg.port);
    let out = d.docker(&["pull", &missing]);
    assert_eq!(out.status.code(), Some(1), "pull of a missing tag: {out:?}");
    assert!(
        stderr(&out).contains("not found") || stderr(&out).contains("manifest unknown"),
        "pull of a missing tag said: {}",
        stderr(&out)
    );
    // Nothing local to push: 404, exit 1.
    let out = d.docker(&["push", &format!("127.0.0.1:{}/nothere:1", reg.port)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "push of a missing image: {out:?}"
    );
    drop(reg);
    d.finish();
}

#[test]
fn seccomp_default_profile_and_its_opt_outs() {
    let d = berthd_with_busybox("dseccomp");
    // By default: no user namespace, no mount (EPERM from the filter).
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "unshare -U under the default profile: {out:?}"
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "unshare -U said: {}",
        stderr(&out)
    );
    let mount = "mkdir -p /m && mount -t tmpfs none /m";
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", mount]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "mount under the default profile: {out:?}"
    );
    // busybox mount words EPERM as "permission denied (are you root?)".
    assert!(
        stderr(&out).contains("permission denied"),
        "mount said: {}",
        stderr(&out)
    );
    // An exec'd process is under the container's filter too.
    let id = d.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let out = d.docker(&["exec", id.trim(), "unshare", "-U", "true"]);
    assert_ne!(out.status.code(), Some(0), "unshare -U in an exec: {out:?}");
    d.ok(&["rm", "-f", id.trim()]);
    let id = d.ok(&["create", "busybox", "true"]);
    let opts = d.ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig.SecurityOpt}}",
        id.trim(),
    ]);
    assert_eq!(
        opts.trim(),
        "null",
        "dockerd leaves SecurityOpt empty by default"
    );
    d.ok(&["rm", id.trim()]);

    // --privileged lifts it (and gives CAP_SYS_ADMIN): mount works.
    d.ok(&["run", "--rm", "--privileged", "busybox", "sh", "-c", mount]);
    // seccomp=unconfined lifts only the filter: a user namespace needs no capability.
    d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
    let id = d.ok(&[
        "create",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "true",
    ]);
    let opts = d.ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig.SecurityOpt}}",
        id.trim(),
    ]);
    assert_eq!(opts.trim(), r#"["seccomp=unconfined"]"#);
    d.ok(&["rm", id.trim()]);

    // A profile file (the CLI reads it and sends its JSON): mkdir denied, the rest allowed.
    let dir = d.sandbox.dir("profiles");
    let good = dir.join("no-mkdir.json");
    std::fs::write(
        &good,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .expect("write the profile");
    let opt = format!("seccomp={}", good.display());
    let out = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/tmp/x",
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "mkdir under a profile denying it: {out:?}"
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "echo",
        "fine",
    ]);
    assert_eq!(out.trim(), "fine");

    // A bad profile: 400 naming the problem (exit 125), no container left.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction": "SCMP_ACT_NOPE", "syscalls": []}"#,
    )
    .expect("write the bad profile");
    let opt = format!("seccomp={}", bad.display());
    let out = d.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "a bad profile: {out:?}");
    assert!(stderr(&out).contains("SCMP_ACT_NOPE"), "{}", stderr(&out));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "no container is left");
    d.finish();
}

#[test]
fn system_df_counts_images_and_containers() {
    let d = berthd_with_busybox("daemon-df");
    let id = d.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Images 1 1"), "docker system df: {df}");
    assert!(df.contains("Containers 1 1"), "docker system df: {df}");
    let verbose = d.ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("busybox"),
        "docker system df -v: {verbose}"
    );
    d.ok(&["rm", "-f", id.trim()]);
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}} {{.Reclaimable}}",
    ]);
    assert!(df.contains("Images 1 0"), "docker system df: {df}");
    assert!(
        df.contains("(100%)"),
        "an unused image is reclaimable: {df}"
    );
}

#[test]
fn running_containers_add_no_mount_to_the_host() {
    let d = berthd_with_busybox("daemon-mounts");
    for name in ["m1", "m2", "m3"] {
        d.ok(&["run", "-d", "--name", name, "busybox", "sleep", "600"]);
    }
    // Each rootfs is mounted in its monitor's own mount namespace: the host's table, which
    // every new container's mount namespace copies, does not grow with them.
    assert!(
        d.sandbox.mounts().is_empty(),
        "container mounts on the host: {:?}",
        d.sandbox.mounts()
    );
    assert_eq!(
        d.ok(&["exec", "m2", "cat", "/etc/hostname"]).trim().len(),
        12
    );
    // A kept container's layer is synced when it is unmounted; a --rm container's is volatile
    // (it is deleted at the exit, so its unmount does not wait for the host's disk).
    let root_options = |out: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some("/"))
            .map(|l| l.split_whitespace().nth(3).unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let kept = root_options(&d.ok(&["exec", "m1", "cat", "/proc/mounts"]));
    assert!(!kept.contains("volatile"), "kept container's root: {kept}");
    let removed = root_options(&d.ok(&["run", "--rm", "busybox", "cat", "/proc/mounts"]));
    assert!(
        removed.contains("volatile"),
        "--rm container's root: {removed}"
    );
    d.ok(&["rm", "-f", "m1", "m2", "m3"]);
    d.finish();
}

/// The monitor's resident set size, from /proc.
fn vm_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

#[test]
fn an_idle_monitor_gives_back_its_set_up_memory_and_keeps_serving() {
    let d = berthd_with_busybox("daemon-settle");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "idle",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 600",
    ]);
    let monitors = d.monitors();
    assert_eq!(monitors.len(), 1, "monitors: {monitors:?}");
    let pid = monitors[0];
    let busy = vm_rss_kib(pid);
    // A second after its last request the monitor drops the pages making the container
    // touched; poll for that, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut idle = vm_rss_kib(pid);
    while idle * 2 > busy && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        idle = vm_rss_kib(pid);
    }
    assert!(
        idle * 2 <= busy,
        "an idle monitor keeps {idle} KiB resident (it had {busy} KiB after the start)"
    );
    // Everything the dropped pages served still works: exec, logs, stats, stop.
    assert_eq!(d.ok(&["exec", "idle", "echo", "exec-ok"]), "exec-ok\n");
    assert_eq!(d.ok(&["logs", "idle"]), "up\n");
    let mem = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "idle"]);
    assert!(
        !mem.contains("PiB"),
        "no limit shows the machine's memory: {mem}"
    );
    d.ok(&["stop", "-t", "1", "idle"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "idle"])
            .trim(),
        "137"
    );
    d.ok(&["rm", "idle"]);
    d.finish();
}

#[test]
fn ps_filters_sizes_and_prune_filters() {
    let d = berthd_with_busybox("daemon-filters");
    d.ok(&["network", "create", "fnet"]);
    d.ok(&["volume", "create", "fvol"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "fnet",
        "-v",
        "fvol:/data",
        "busybox",
        "sleep",
        "600",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "second",
        "-p",
        "127.0.0.1::80",
        "--expose",
        "9000/udp",
        "busybox",
        "sleep",
        "600",
    ]);
    d.ok(&[
        "run",
        "--name",
        "third",
        "--label",
        "keep=yes",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]);
    d.ok(&[
        "run",
        "--name",
        "fourth",
        "--label",
        "junk=1",
        "busybox",
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /big",
    ]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ps", "-a", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = d.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["--filter", "network=fnet"]), ["first"]);
    assert_eq!(names(&["--filter", "volume=fvol"]), ["first"]);
    assert_eq!(names(&["--filter", "volume=/data"]), ["first"]);
    assert_eq!(names(&["--filter", "publish=80"]), ["second"]);
    assert_eq!(names(&["--filter", "expose=9000-9001/udp"]), ["second"]);
    assert_eq!(names(&["--filter", "since=second"]), ["fourth", "third"]);
    assert_eq!(names(&["--filter", "before=second"]), ["first"]);
    assert_eq!(
        names(&["--filter", "health=none", "--filter", "status=running"]),
        ["first", "second"]
    );
    assert_eq!(
        names(&["--filter", "label=keep", "--filter", "label=junk"]),
        Vec::<String>::new()
    );
    let out = d.docker(&["ps", "--filter", "nosuch=1"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("invalid filter 'nosuch'"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["ps", "--filter", "status=sleeping"]);
    assert!(
        stderr(&out).contains("invalid filter 'status=sleeping'"),
        "{}",
        stderr(&out)
    );

    // Sizes: the writable layer holds what the container wrote.
    let rw: i64 = d
        .ok(&["inspect", "-s", "-f", "{{.SizeRw}}", "third"])
        .trim()
        .parse()
        .expect("SizeRw");
    assert!(
        (100_000..200_000).contains(&rw),
        "SizeRw of a container that wrote 100 kB: {rw}"
    );
    let ps = d.ok(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=third",
        "--format",
        "{{.Size}}",
    ]);
    assert!(ps.starts_with("100kB"), "docker ps -s: {ps}");

    // Prune by label: only the stopped container without `keep`.
    let out = d.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains("Total reclaimed space: 50kB"), "prune: {out}");
    assert_eq!(names(&[]), ["first", "second", "third"]);
    let out = d.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(
        out.contains("Total reclaimed space: 0B"),
        "nothing is an hour old: {out}"
    );
    assert_eq!(names(&[]), ["first", "second", "third"]);
    d.ok(&["rm", "-f", "first", "second", "third"]);
    d.ok(&["network", "rm", "fnet"]);
    d.ok(&["volume", "rm", "fvol"]);
    d.finish();
}

/// HostConfig fields that used to be accepted and dropped: each now reaches the container
/// (seen from inside it or in its cgroup) or is refused with its name.
#[test]
fn host_config_fields_reach_the_container_or_are_refused() {
    let d = berthd_with_busybox("daemon-hostfields");
    let inside = |args: &[&str]| -> String {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        d.ok(&all).trim().to_string()
    };
    assert_eq!(
        inside(&[
            "--oom-score-adj",
            "300",
            "busybox",
            "cat",
            "/proc/self/oom_score_adj"
        ]),
        "300"
    );
    let groups = inside(&[
        "--group-add",
        "1234",
        "busybox",
        "sh",
        "-c",
        "grep ^Groups: /proc/self/status",
    ]);
    assert!(
        groups.split_whitespace().any(|g| g == "1234"),
        "--group-add 1234: {groups}"
    );
    let host_ns = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .expect("read this process's namespace link")
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        inside(&["--pid", "host", "busybox", "readlink", "/proc/self/ns/pid"]),
        host_ns("pid")
    );
    assert_eq!(
        inside(&["--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc"]),
        host_ns("ipc")
    );
    assert_eq!(
        inside(&["--uts", "host", "busybox", "readlink", "/proc/self/ns/uts"]),
        host_ns("uts")
    );
    assert_ne!(
        inside(&["busybox", "readlink", "/proc/self/ns/pid"]),
        host_ns("pid"),
        "the default is a PID namespace of the container's own"
    );
    assert_ne!(
        inside(&[
            "--cgroupns",
            "private",
            "busybox",
            "readlink",
            "/proc/self/ns/cgroup"
        ]),
        host_ns("cgroup")
    );
    assert_eq!(
        inside(&["busybox", "readlink", "/proc/self/ns/cgroup"]),
        host_ns("cgroup"),
        "on a cgroup v1 host the default is the host's cgroup namespace, as dockerd's"
    );
    assert_eq!(
        inside(&[
            "--ipc",
            "none",
            "busybox",
            "sh",
            "-c",
            "test -e /dev/shm || echo no-shm"
        ]),
        "no-shm"
    );
    // --pid container: shares a running container's PID namespace.
    d.ok(&["run", "-d", "--name", "donor", "busybox", "sleep", "600"]);
    let donor_ns = d.ok(&["exec", "donor", "readlink", "/proc/self/ns/pid"]);
    assert_eq!(
        inside(&[
            "--pid",
            "container:donor",
            "busybox",
            "readlink",
            "/proc/self/ns/pid"
        ]),
        donor_ns.trim()
    );
    let out = d.docker(&[
        "run", "--rm", "--uts", "host", "-h", "web", "busybox", "true",
    ]);
    assert!(
        stderr(&out).contains("hostname and the UTS mode"),
        "{}",
        stderr(&out)
    );

    // Cgroup settings: a parent of the container's own, a reservation, a device rule.
    let parent = format!("{}/custom", d.sandbox.tag);
    let id = d.ok(&[
        "run",
        "-d",
        "--cgroup-parent",
        &parent,
        "--memory-reservation",
        "16m",
        "--device-cgroup-rule",
        "c 42:7 mr",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = id.trim();
    let cg = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/{parent}/{id}/{file}"))
            .unwrap_or_else(|e| panic!("read {ctrl}/{parent}/{id}/{file}: {e}"))
    };
    assert_eq!(
        cg("memory", "memory.soft_limit_in_bytes").trim(),
        (16u64 << 20).to_string()
    );
    assert!(
        cg("devices", "devices.list")
            .lines()
            // The kernel lists access as r, w, m in that order.
            .any(|l| l == "c 42:7 rm"),
        "devices.list: {}",
        cg("devices", "devices.list")
    );
    d.ok(&["rm", "-f", id]);
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .expect("list /sys/fs/cgroup")
        .flatten()
    {
        let _ = std::fs::remove_dir(ctrl.path().join(&parent));
    }

    // Refused by name, leaving nothing behind.
    for (args, field) in [
        (&["--gpus", "all"][..], "DeviceRequests"),
        (&["--storage-opt", "size=1G"][..], "StorageOpt"),
        (&["--ipc", "container:donor"][..], "IpcMode"),
        (&["--pid", "container:nosuch"][..], "no such container"),
        (&["--volume-driver", "nfs"][..], "VolumeDriver"),
        (&["--isolation", "hyperv"][..], "isolation"),
    ] {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        all.extend(["busybox", "true"]);
        let out = d.docker(&all);
        assert_ne!(out.status.code(), Some(0), "{args:?} was accepted");
        assert!(stderr(&out).contains(field), "{args:?}: {}", stderr(&out));
    }
    d.ok(&["rm", "-f", "donor"]);
    assert_eq!(
        d.ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create left a container"
    );
    d.finish();
}

/// Attach's logs, stream and detachKeys, and the image list and prune filters, as a client
/// sends them.
#[test]
fn attach_replays_and_detaches_and_image_filters_apply() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let d = berthd_with_busybox("daemon-attach-images");
    d.ok(&[
        "run",
        "--name",
        "talker",
        "busybox",
        "echo",
        "hello-from-log",
    ]);
    // logs=1&stream=0: the log so far, then the end, as dockerd answers it (also for a
    // container that has exited).
    let raw = |request: &str| -> Vec<u8> {
        let mut s = UnixStream::connect(&d.socket).expect("connect to berthd");
        s.set_read_timeout(Some(T)).expect("read timeout");
        s.write_all(request.as_bytes()).expect("send the request");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    let answer = raw(
        "POST /containers/talker/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("hello-from-log"), "attach logs=1: {text}");

    // A tty container: the detach keys end the attach and the container runs on.
    d.ok(&["run", "-dit", "--name", "shell", "busybox", "sh"]);
    let mut s = UnixStream::connect(&d.socket).expect("connect to berthd");
    s.set_read_timeout(Some(T)).expect("read timeout");
    s.write_all(
        b"POST /containers/shell/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x HTTP/1.1\r\nHost: berthd\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    )
    .expect("attach");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = |s: &mut UnixStream, seen: &mut Vec<u8>, what: &str| {
        while !String::from_utf8_lossy(seen).contains(what) {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {what:?}: {e}"));
            assert!(
                n > 0,
                "closed before {what:?}: {}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    };
    read_until(&mut s, &mut seen, "101");
    s.write_all(b"echo mark$((40+2))\n")
        .expect("type a command");
    read_until(&mut s, &mut seen, "mark42");
    s.write_all(&[0x18]).expect("type ctrl-x");
    let mut rest = Vec::new();
    let end = s.read_to_end(&mut rest);
    assert!(end.is_ok(), "the attach did not end at ctrl-x: {end:?}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "shell"])
            .trim(),
        "true",
        "detaching stopped the container"
    );
    let answer = raw(
        "POST /containers/shell/attach?stream=1&stdout=1&detachKeys=ctrl-1 HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400") && text.contains("Invalid detach keys (ctrl-1)"),
        "{text}"
    );
    d.ok(&["rm", "-f", "talker", "shell"]);

    // Image list filters and a prune narrowed by label.
    d.ok(&["tag", "busybox", "mybox:1"]);
    let listed = |filter: &str| -> Vec<String> {
        let mut v: Vec<String> = d
            .ok(&[
                "images",
                "--filter",
                filter,
                "--format",
                "{{.Repository}}:{{.Tag}}",
            ])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed("reference=my*"), ["mybox:1"]);
    assert_eq!(listed("reference=busy*:latest"), ["busybox:latest"]);
    assert!(listed("before=busybox").is_empty());
    assert!(listed("since=busybox").is_empty());
    assert!(listed("label=nosuch").is_empty());
    let out = d.docker(&["images", "--filter", "before=nosuch"]);
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    let pruned = d.ok(&["image", "prune", "-a", "-f", "--filter", "label=nosuch"]);
    assert!(pruned.contains("Total reclaimed space: 0B"), "{pruned}");
    assert_eq!(listed("reference=busybox"), ["busybox:latest"]);
    d.finish();
}
