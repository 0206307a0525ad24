//! `exec` and the process flags a user passes to it and to `create`: `--env`, `--cwd`,
//! `--user`, `--process FILE`, `-d` with `--pid-file`, and `create --pid-file`.

use std::fs;
use std::time::Duration;

use berth_tests::wait::{is_alive, process_exit};
use berth_tests::{Bundle, Runtime};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn sleeper() -> Bundle {
    Bundle::new()
        .expect("a busybox bundle")
        .args(&["sleep", "1000"])
}

fn read_pid(path: &std::path::Path) -> i32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("a pid in {}: {e}: {text:?}", path.display()))
}

#[test]
fn exec_takes_env_cwd_and_user() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("execflags");
    rt.create_and_start(&id, &b).expect("create and start");
    // runc adds --env to the process's environment, crun replaces it: give PATH too.
    let flags = [
        "--env",
        "FROM_EXEC=yes",
        "--env",
        "PATH=/bin",
        "--cwd",
        "/etc",
        "--user",
        "65534:65534",
    ];
    let out = rt
        .exec_with(
            &id,
            &flags,
            &["sh", "-c", "echo $FROM_EXEC; pwd; id -u; id -g"],
        )
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    assert_eq!(out.stdout, "yes\n/etc\n65534\n65534\n");
}

#[test]
fn exec_exits_with_the_process_status() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("execexit");
    rt.create_and_start(&id, &b).expect("create and start");
    let out = rt.exec(&id, &["sh", "-c", "exit 5"]).expect("exec");
    assert_eq!(out.code, Some(5), "{out:?}");
    let missing = rt.exec(&id, &["/no/such/binary"]).expect("exec");
    assert!(
        !missing.success(),
        "exec of a missing binary fails: {missing:?}"
    );
    assert_eq!(
        rt.status(&id).expect("state"),
        "running",
        "the init is unharmed"
    );
}

#[test]
fn exec_reads_a_process_file() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("execproc");
    rt.create_and_start(&id, &b).expect("create and start");
    let process = rt.scratch().join("process.json");
    let spec = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0, "additionalGids": [7] },
        "args": ["sh", "-c", "echo from-process-file; pwd; grep Groups /proc/self/status"],
        "env": ["PATH=/bin"],
        "cwd": "/proc"
    });
    fs::write(&process, spec.to_string()).expect("write process.json");
    let path = process.to_string_lossy().into_owned();
    let out = rt
        .exec_with(&id, &["--process", &path], &[])
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["from-process-file", "/proc"], "{out:?}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "7"]
    );
}

#[test]
fn exec_detached_writes_its_pid_file() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("execd");
    let init = rt.create_and_start(&id, &b).expect("create and start");
    let pid_file = rt.scratch().join("exec.pid");
    let path = pid_file.to_string_lossy().into_owned();
    rt.exec_with(&id, &["-d", "--pid-file", &path], &["sleep", "999"])
        .expect("exec -d")
        .ok()
        .expect("exec -d succeeds");
    let pid = read_pid(&pid_file);
    assert!(
        pid != init && is_alive(pid),
        "the exec'd process {pid} runs on"
    );
    let ns = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).expect("a pid namespace link");
    assert_eq!(ns(pid), ns(init), "in the container's pid namespace");
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    process_exit(init, WAIT).expect("the init exits");
    process_exit(pid, WAIT).expect("the exec'd process dies with the pid namespace");
}

#[test]
fn create_writes_the_init_pid_file() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("pidfile");
    let pid_file = rt.scratch().join("init.pid");
    let path = pid_file.to_string_lossy().into_owned();
    rt.create_with(&id, &b, &["--pid-file", &path], &Default::default())
        .expect("create")
        .ok()
        .expect("create succeeds");
    assert_eq!(read_pid(&pid_file), rt.pid(&id).expect("state pid"));
}

/// `exec` into a paused container is refused, unless `--ignore-paused` asks for it: then the
/// process joins the frozen cgroup and runs once the container is resumed.
#[test]
fn exec_ignore_paused_runs_after_resume() {
    let rt = runtime();
    let id = rt.new_id("ignpaused");
    let b = sleeper();
    rt.create_and_start(&id, &b).expect("create and start");
    rt.pause(&id).expect("pause").ok().expect("pause succeeds");
    let refused = rt.exec(&id, &["echo", "no"]).expect("exec");
    assert!(
        !refused.success(),
        "exec into a paused container: {refused:?}"
    );
    let spawned = rt
        .spawn_with(
            &["exec", "--ignore-paused", &id, "echo", "after resume"],
            &berth_tests::runtime::Invocation::default(),
        )
        .expect("spawn exec --ignore-paused");
    rt.resume(&id)
        .expect("resume")
        .ok()
        .expect("resume succeeds");
    let out = spawned.wait().expect("exec --ignore-paused");
    assert!(out.success(), "exec --ignore-paused: {out:?}");
    assert_eq!(out.stdout, "after resume\n");
}
